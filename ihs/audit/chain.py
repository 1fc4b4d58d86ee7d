"""The hash chain of AuditEvents: each event carries its predecessor's hash and its own.

Every AuditEvent written by `record` carries one extension (docs/security.md):

    {"url": "https://ihs.example.org/fhir/StructureDefinition/audit-chain",
     "extension": [{"url": "sequence", "valueDecimal": 42},
                   {"url": "previous", "valueString": "<hex SHA-256 of event 41>"},
                   {"url": "hash", "valueString": "<hex SHA-256 of this event>"}]}

The hash is the SHA-256 of the event's canonical form: its JSON without `meta` (which the store
writes) and without the `hash` item, keys sorted, no whitespace, UTF-8. Event 1's `previous` is 64
zeros. The `audit_chain` table lists the events by sequence with their hashes (so a verifier finds
them without scanning the store) and `audit_chain_head` holds the last one. Appending locks the
head row (SELECT ... FOR UPDATE on PostgreSQL; SQLite has a single writer), so the chain order is
the commit order whatever the number of worker processes.

`record(uow, event)` stores the event as a resource in the caller's unit of work: a change and its
AuditEvent commit together. Reads' events reach the chain the same way, many per transaction,
when their journal is filed (ihs/audit/journal.py).
"""
from __future__ import annotations

import hashlib
import uuid
from contextlib import closing

import orjson
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import Engine

from ihs.fhir.validation import validate

CHAIN_URL = "https://ihs.example.org/fhir/StructureDefinition/audit-chain"
GENESIS = "0" * 64

metadata = MetaData()

audit_chain = Table(
    "audit_chain", metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("res_id", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_chain_head = Table(
    "audit_chain_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Per journal of read AuditEvents (ihs/audit/journal.py): the last row on the chain and its journal hash.
audit_journal_filed = Table(
    "audit_journal_filed", metadata,
    Column("journal", String(200), primary_key=True),
    Column("upto", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

_ready: set[int] = set()


def create_audit_schema(engine: Engine) -> None:
    """Create the chain tables and the head row (idempotent; call it when the server starts)."""
    with engine.begin() as conn:
        _create(conn)
    _ready.add(id(engine))


def _create(conn) -> None:
    metadata.create_all(conn)
    if conn.execute(select(audit_chain_head.c.id)).first() is None:
        conn.execute(insert(audit_chain_head).values(id=1, seq=0, hash=GENESIS))


def drop_audit_schema(engine: Engine) -> None:
    metadata.drop_all(engine)
    _ready.discard(id(engine))


def chain_fields(event: dict) -> dict:
    """{"sequence": n, "previous": hex, "hash": hex} of an event (empty if it has no chain extension)."""
    for extension in event.get("extension", []):
        if extension.get("url") == CHAIN_URL:
            return {item.get("url"): item.get("valueDecimal", item.get("valueString"))
                    for item in extension.get("extension", [])}
    return {}


def canonical(event: dict) -> bytes:
    """The bytes the hash covers: the event without `meta` and without its own hash."""
    body = {k: v for k, v in event.items() if k != "meta"}
    extensions = []
    for extension in body.get("extension", []):
        if extension.get("url") == CHAIN_URL:
            items = [e for e in extension.get("extension", []) if e.get("url") != "hash"]
            extension = {**extension, "extension": items}
        extensions.append(extension)
    if extensions:
        body["extension"] = extensions
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def event_hash(event: dict) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


# The chain's bookkeeping runs on every audited request: plain SQL, no expression building per call.
def _both(sql: str, postgresql_suffix: str = "") -> dict[str, str]:
    """The statement for each driver: SQLite's `?` parameters, psycopg's `%s`."""
    return {"sqlite": sql, "postgresql": sql.replace("?", "%s") + postgresql_suffix}


_HEAD_SQL = _both("SELECT seq, hash FROM audit_chain_head WHERE id = 1", " FOR UPDATE")
_LINK_SQL = _both("INSERT INTO audit_chain (seq, res_id, hash) VALUES (?, ?, ?)")
_MOVE_HEAD_SQL = _both("UPDATE audit_chain_head SET seq = ?, hash = ? WHERE id = 1")


def _head(cursor, dialect: str) -> tuple[int, str]:
    cursor.execute(_HEAD_SQL[dialect])
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the audit chain has no head row; run create_audit_schema(engine)")
    return row[0], row[1]


def _ensure_schema(conn, engine) -> None:
    if id(engine) not in _ready:
        _create(conn)  # in the caller's transaction: another connection would wait for its lock
        _ready.add(id(engine))


def _chained(events: list[dict], seq: int, previous: str) -> tuple[list[dict], list[tuple]]:
    """Copies of `events` carrying their chain extension, and their `audit_chain` rows, after (seq, previous)."""
    chained, links = [], []
    for event in events:
        event = {k: v for k, v in event.items() if k != "meta"}
        event["id"] = event.get("id") or str(uuid.uuid4())
        event["extension"] = [e for e in event.get("extension", []) if e.get("url") != CHAIN_URL]
        seq += 1
        event["extension"].append({"url": CHAIN_URL, "extension": [
            {"url": "sequence", "valueDecimal": seq}, {"url": "previous", "valueString": previous}]})
        previous = event_hash(event)
        event["extension"][-1]["extension"].append({"url": "hash", "valueString": previous})
        chained.append(event)
        links.append((seq, event["id"], previous))
    return chained, links


def _advance(cursor, dialect: str, links: list[tuple]) -> None:
    cursor.executemany(_LINK_SQL[dialect], links)
    cursor.execute(_MOVE_HEAD_SQL[dialect], (links[-1][0], links[-1][2]))


def record(uow, event: dict, *, checked: bool = False):
    """Append `event` (an AuditEvent dict) to the chain and store it in the caller's unit of work.

    The unit of work must be a write one (`store.session(write=True)`): the AuditEvent commits
    with the change it records, or not at all. `checked=True` skips validation for events built by
    `audit_event` (valid by construction: tests/audit/test_events.py validates every action).
    Returns the StoredResource.
    """
    return record_many(uow, [event], checked=checked)[0]


def record_many(uow, events: list[dict], *, checked: bool = False) -> list:
    """Append several AuditEvents in order, locking the chain head once (see `record`)."""
    if not uow.conn.get_execution_options().get("ihs_write"):
        raise ValueError("record() needs a write unit of work: store.session(write=True)")
    if not events:
        return []
    dialect = uow.store.dialect
    _ensure_schema(uow.conn, uow.store.engine)
    with closing(uow.conn.connection.driver_connection.cursor()) as cursor:  # in the unit of work's transaction
        chained, links = _chained(events, *_head(cursor, dialect))
        if not checked:
            for event in chained:
                validate(event)
        stored = [uow.create(event, publish=False) for event in chained]  # the chain is their feed, not the outbox
        _advance(cursor, dialect, links)
    return stored


def ensure_audit_schema(engine: Engine) -> None:
    """`create_audit_schema` once per engine in this process."""
    if id(engine) not in _ready:
        create_audit_schema(engine)
