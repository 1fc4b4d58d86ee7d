"""The FHIR store: one interface over SQLite and PostgreSQL.

`Store.session()` opens a unit of work, one database transaction in which a change writes the
resource row, its history row, its search-index rows and its outbox row together. Appends are
buffered and written in bulk (before a read in the same unit of work that must see them, and at
commit) through the driver's fastest path (executemany on SQLite, COPY on PostgreSQL), which is
what makes loading a 400-entry transaction Bundle cheap; an update replaces its index rows the
same way, the old ones deleted for many resources at once.
"""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Iterator, NamedTuple

import orjson
import psycopg
from sqlalchemy import Text, and_, case, cast, func, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ihs.fhir.errors import Conflict
from ihs.store import schema
from ihs.store.engine import make_engine
from ihs.store.protected import ENCRYPTED_VALUE, IdentifierProtection, in_use
from ihs.store.schema import (INDEX_COLUMNS, INDEX_TABLES, contained_resources, idx_fulltext, idx_position,
                              outbox, resource_history, resources)

_DUPLICATE = (IntegrityError, sqlite3.IntegrityError, psycopg.errors.IntegrityError)


@dataclass(frozen=True)
class StoredResource:
    """One stored version of a resource; `content` is its JSON text (None for a deletion)."""

    rid: int
    type: str
    id: str
    version: int
    last_updated: int  # microseconds since the epoch, UTC
    deleted: bool
    content: str | None
    method: str | None = None  # the interaction that wrote this version (history only)
    container: str | None = None  # "Type/id" of the container of a contained resource (search with _contained)

    def resource(self) -> dict:
        return orjson.loads(self.content)

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def last_modified(self) -> datetime:
        return datetime.fromtimestamp(self.last_updated / 1e6, timezone.utc)


class Prepared(NamedTuple):
    """A version ready to store (`Store.prepare`)."""

    stored: StoredResource
    index_rows: object
    at_rest: str  # the text stored: protected identifier values sealed


WAL_CHECKPOINT_PAGES = 1000  # SQLite's default: a commit that leaves the log longer checkpoints it


def instant(micros: int) -> str:
    """A FHIR instant with microsecond precision, in UTC."""
    return datetime.fromtimestamp(micros / 1e6, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    return str(uuid.uuid4())


class _Clock:
    """Strictly increasing microsecond timestamps within this process, so versions order stably."""

    def __init__(self):
        self._last = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            self._last = max(time.time_ns() // 1000, self._last + 1)
            return self._last


class Store:
    """The database, its schema and its units of work."""

    def __init__(self, url: str | None = None, *, extract=None, pool_size: int = 8):
        self.engine: Engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        # resident ID numbers and other protected identifiers: sealed at rest, hashed in the index
        self.protection = IdentifierProtection(self.engine)
        self.clock = _Clock()
        self.after_commit: list = []  # called after every committed write (e.g. to wake the outbox dispatcher)
        if extract is None:
            from ihs.fhir.indexing import extract
        self.extract = extract

    def create_schema(self) -> None:
        """Create the tables, check the identifier key (a wrong key stops the start here) and seal what an
        earlier version stored plain."""
        schema.metadata.create_all(self.engine)
        for table in schema.metadata.sorted_tables:  # indexes added since the database was made
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)
        unsealed = self.protection.check_key()
        if unsealed:
            from ihs.store.sealing import seal_stored_identifiers  # it builds on this module

            seal_stored_identifiers(self, unsealed)
            self.protection.record_sealed(unsealed)

    def drop_schema(self) -> None:
        schema.metadata.drop_all(self.engine)

    def prepare(self, resource: dict, version: int = 1, rid: int | None = None) -> "Prepared":
        """A version ready to store: `resource` with its meta, its text at rest and its index rows.

        Needs no transaction: a writer may prepare before it takes SQLite's one write lock.
        """
        now = self.clock.now()
        meta = resource.get("meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta["versionId"] = str(version)
        meta["lastUpdated"] = instant(now)
        # resourceType, id and meta lead, as in the specification's examples.
        rest = [(k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta")]
        head = (("resourceType", resource["resourceType"]), ("id", resource["id"]), ("meta", meta))
        resource.clear()
        resource.update(head)
        resource.update(rest)
        content = orjson.dumps(resource).decode()
        # the stored text and the index see protected identifier values sealed and hashed; the caller, plain
        sealed = self.protection.seal(resource, content)
        index_rows = self.extract(sealed.indexed if sealed else resource)
        stored = StoredResource(rid or 0, resource["resourceType"], resource["id"], version, now, False, content)
        return Prepared(stored, index_rows, sealed.text if sealed else content)

    @contextmanager
    def session(self, *, write: bool = False, synced: bool = True) -> Iterator["UnitOfWork"]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        `synced=False` lets SQLite skip the fsync of this commit (it survives a process crash, and
        is on disk at the next checkpoint), and the checkpoint itself, which the next synced commit or
        `checkpoint()` runs: for records such as read audits, never for client data.
        """
        conn = self.engine.connect()
        if not synced and self.dialect == "sqlite":
            conn.connection.driver_connection.execute("PRAGMA synchronous=NORMAL")
            conn.connection.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
        if write or self.dialect == "sqlite":
            conn = conn.execution_options(ihs_write=write)
        else:
            # Under READ COMMITTED every statement has its own snapshot anyway; autocommit saves
            # the BEGIN and COMMIT round trips of a read.
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            with conn.begin(), in_use(self.protection):
                uow = UnitOfWork(self, conn)
                yield uow
                uow.flush()
            if write:
                for callback in self.after_commit:
                    callback()
        except _DUPLICATE as exc:
            raise Conflict(f"a concurrent change touched the same resource; retry the request ({exc})") from exc
        finally:
            if not synced and self.dialect == "sqlite":
                conn.connection.driver_connection.execute("PRAGMA synchronous=FULL")
                conn.connection.driver_connection.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            conn.close()

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database without holding writers up (PASSIVE)."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def pending_events(self, limit: int = 500) -> list[tuple]:
        """Undispatched outbox rows, oldest first: (seq, res_type, res_id, version, interaction, created_at)."""
        c = outbox.c
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                select(c.seq, c.res_type, c.res_id, c.version, c.interaction, c.created_at)
                .where(c.dispatched_at.is_(None)).order_by(c.seq).limit(limit)).all()]

    def mark_dispatched(self, seqs: list[int]) -> None:
        if not seqs:
            return
        # Unsynced: if the mark is lost, the events are delivered again, which handlers must allow anyway.
        with self.session(write=True, synced=False) as uow:
            uow.conn.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(dispatched_at=self.clock.now()))

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def dispose(self) -> None:
        self.engine.dispose()


_CURRENT_SQL = {
    "sqlite": "SELECT rid, res_type, res_id, version, last_updated, deleted, content FROM resources "
              "WHERE res_type = ? AND res_id = ?",
    "postgresql": "SELECT rid, res_type, res_id, version, last_updated, deleted, content::text FROM resources "
                  "WHERE res_type = %s AND res_id = %s",
}
# The update path's statements, as plain SQL per driver: a Patient relinked by the MPI or a vital sign
# corrected runs them on every change, and SQLAlchemy would build and compile each one per call.
_PLACEHOLDER = {"sqlite": "?", "postgresql": "%s"}


@lru_cache(maxsize=None)
def _update_sql(dialect: str) -> dict[str, str]:
    p = _PLACEHOLDER[dialect]
    return {
        "replace": f"UPDATE resources SET version = {p}, last_updated = {p}, deleted = {p}, content = {p} "
                   f"WHERE rid = {p} AND version = {p}",
        "superseded": f"UPDATE resource_history SET content = {p} WHERE rid = {p} AND version = {p}",
        "top_rid": "SELECT coalesce(max(rid), 0) FROM resources",
        "lowest_contained_rid": "SELECT min(rid) FROM contained_resources",
        "rids": f"SELECT nextval(pg_get_serial_sequence('resources', 'rid')) FROM generate_series(1, {p})",
        "contained": f"DELETE FROM contained_resources WHERE container_rid = {p} RETURNING rid",
    }


# Every table holding search-index rows of a version: all are cleared when a version is replaced (a
# user-defined SearchParameter may put a type's rows in any of them). SQLite runs one prepared DELETE per
# table over the rids; PostgreSQL one statement for all tables, one round trip.
_INDEXED_TABLES = tuple(t.name for t in (*INDEX_TABLES.values(), idx_fulltext, idx_position))
_DELETE_INDEX_SQLITE = tuple(f"DELETE FROM {name} WHERE rid = ?" for name in _INDEXED_TABLES)
_DELETE_INDEX_POSTGRESQL = ("WITH " + ", ".join(
    f"d{i} AS (DELETE FROM {name} WHERE rid = ANY(%(rids)s))" for i, name in enumerate(_INDEXED_TABLES[:-1]))
    + f" DELETE FROM {_INDEXED_TABLES[-1]} WHERE rid = ANY(%(rids)s)")
# many ids of one type: SQLite gets one placeholder per id, PostgreSQL an array
_CURRENTS_SQL = {
    "sqlite": _CURRENT_SQL["sqlite"].replace("res_id = ?", "res_id IN ({})"),
    "postgresql": _CURRENT_SQL["postgresql"].replace("res_id = %s", "res_id = ANY(%s)"),
}
_RESOURCE_COLUMNS = ("rid", "res_type", "res_id", "version", "last_updated", "deleted", "content")
_HISTORY_COLUMNS = ("rid", "version", "res_type", "res_id", "last_updated", "method", "content")
_OUTBOX_COLUMNS = ("res_type", "res_id", "version", "interaction", "created_at")
_BULK_COLUMNS = {"resources": _RESOURCE_COLUMNS, "resource_history": _HISTORY_COLUMNS, "outbox": _OUTBOX_COLUMNS,
                 "contained_resources": tuple(c.name for c in contained_resources.columns),
                 "idx_fulltext": tuple(c.name for c in idx_fulltext.columns),
                 "idx_position": tuple(c.name for c in idx_position.columns),
                 **{f"idx_{name}": ("rid", "res_type") + cols for name, cols in INDEX_COLUMNS.items()}}


@lru_cache(maxsize=None)
def _content_columns(dialect: str):
    """The current and the history content as JSON text (PostgreSQL stores JSONB)."""
    h, r = resource_history.c, resources.c
    version_content = case((h.version == r.version, r.content), else_=h.content)
    if dialect == "postgresql":
        return cast(r.content, Text), cast(version_content, Text)
    return r.content, version_content


class UnitOfWork:
    """Reads and writes inside one database transaction.

    The content of a version lives in one place: the current version's in `resources`, earlier
    versions' in `resource_history` (moved there when they are superseded). A create writes its
    JSON once.
    """

    def __init__(self, store: Store, conn: Connection):
        self.store = store
        self.conn = conn
        self._content, self._history_content = _content_columns(store.dialect)
        self._new: list[tuple[tuple, object]] = []  # resources rows without rid, with their index rows
        self._created: set[tuple[str, str]] = set()  # (type, id) of the rows in _new
        self._appends: dict[str, list[tuple]] = {}  # table -> rows in _BULK_COLUMNS order
        self._superseded: list[tuple] = []  # (content, rid, version) for history rows to fill
        # rids whose index rows are replaced, and whether they held contained resources: cleared at flush,
        # before the new rows are written
        self._reindexed: dict[int, bool] = {}
        self._sql = _update_sql(store.dialect)
        self._next_contained_rid: int | None = None  # SQLite: the next (negative) rid of a contained resource

    # -- reads ---------------------------------------------------------------------------------

    def _select_current(self):
        r = resources.c
        return select(r.rid, r.res_type, r.res_id, r.version, r.last_updated, r.deleted, self._content)

    def current(self, res_type: str, res_id: str) -> StoredResource | None:
        """The current version (a deletion marker included), or None if the id never existed."""
        # `resources` holds every update already: only a create is buffered (so a run of reads and
        # writes keeps its index rows for one bulk append)
        if (res_type, res_id) in self._created:
            self.flush()
        # The hottest statement of the server: plain SQL, no expression building per call.
        row = self.conn.exec_driver_sql(_CURRENT_SQL[self.store.dialect], (res_type, res_id)).first()
        return self._opened(row) if row else None

    def currents(self, res_type: str, ids: list[str]) -> dict[str, StoredResource]:
        """The current versions of `ids` of one type by id, read together (ids never stored are absent)."""
        found: dict[str, StoredResource] = {}
        if not ids:
            return found
        if any((res_type, res_id) in self._created for res_id in ids):
            self.flush()
        dialect = self.store.dialect
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            if dialect == "postgresql":
                rows = self.conn.exec_driver_sql(_CURRENTS_SQL[dialect], (res_type, chunk)).all()
            else:
                sql = _CURRENTS_SQL[dialect].format(", ".join("?" * len(chunk)))
                rows = self.conn.exec_driver_sql(sql, (res_type, *chunk)).all()
            for row in rows:
                stored = self._opened(tuple(row[:5]) + (bool(row[5]),) + tuple(row[6:]))
                found[stored.id] = stored
        return found

    def current_by_rids(self, rids: list[int]) -> list[StoredResource]:
        """Current versions in the order of `rids` (used by search to load a page)."""
        if not rids:
            return []
        self.flush()
        rows = self.conn.execute(self._select_current().where(resources.c.rid.in_(rids))).all()
        by_rid = {r[0]: self._opened(r) for r in rows}
        return [by_rid[rid] for rid in rids if rid in by_rid]

    def types_of(self, ids: list[str]) -> dict[str, list[str]]:
        """The resource types holding each of `ids` (deleted ones included), for resolving bare ids."""
        found: dict[str, list[str]] = {}
        if not ids:
            return found
        self.flush()
        for start in range(0, len(ids), 500):
            rows = self.conn.execute(select(resources.c.res_id, resources.c.res_type)
                                     .where(resources.c.res_id.in_(ids[start:start + 500]))).all()
            for res_id, res_type in rows:
                found.setdefault(res_id, []).append(res_type)
        return found

    def _select_history(self):
        h = resource_history.c
        return (select(h.rid, h.res_type, h.res_id, h.version, h.last_updated, h.method == "DELETE",
                       self._history_content, h.method)
                .select_from(resource_history.join(resources, resources.c.rid == h.rid)))

    def version(self, res_type: str, res_id: str, version: int) -> StoredResource | None:
        self.flush()
        h = resource_history.c
        row = self.conn.execute(self._select_history().where(
            h.rid == self._rid_of(res_type, res_id), h.version == version)).first()
        return self._opened(row) if row else None

    def history(self, res_type: str | None = None, res_id: str | None = None, *, since: int | None = None,
                at: int | None = None, count: int = 50, offset: int = 0,
                condition=None) -> tuple[list[StoredResource], int]:
        """Versions newest first, with the total count; scoped to a system, a type or one resource,
        and by `condition` on resource_history (the caller's visibility, ihs/store/search/visibility.py)."""
        self.flush()
        h = resource_history.c
        conditions = [] if condition is None else [condition]
        if res_id:
            conditions.append(h.rid == self._rid_of(res_type, res_id))
        elif res_type:
            conditions.append(h.res_type == res_type)
        if since is not None:
            conditions.append(h.last_updated >= since)
        if at is not None:
            conditions.append(h.last_updated <= at)
        where = and_(*conditions) if conditions else text("1=1")
        total = self.conn.execute(select(func.count()).select_from(resource_history).where(where)).scalar_one()
        rows = self.conn.execute(self._select_history().where(where)
                                 .order_by(h.last_updated.desc(), h.version.desc()).limit(count).offset(offset)).all()
        return [self._opened(r) for r in rows], total

    # -- writes --------------------------------------------------------------------------------

    def create(self, resource: dict, *, method: str = "POST", publish: bool = True,
               prepared: "Prepared | None" = None) -> StoredResource:
        """Store a new resource (server id unless the caller set one for create-on-update).

        `publish=False` writes no outbox row: for the server's own records that are no change to react to
        (AuditEvents filed from the audit chain, which is their feed). `prepared`: `store.prepare(resource)`
        done before this unit of work began.
        """
        resource.setdefault("id", new_id())
        stored, index_rows, at_rest = prepared or self.store.prepare(resource)
        self._new.append(((stored.type, stored.id, 1, stored.last_updated, False, at_rest), index_rows))
        self._created.add((stored.type, stored.id))
        self._append_change(stored, method, "create", publish)
        return stored

    def update(self, resource: dict, current: StoredResource, *, method: str = "PUT") -> StoredResource:
        """Store a new version over `current` (which may be a deletion marker)."""
        stored, index_rows, at_rest = self.store.prepare(resource, current.version + 1, rid=current.rid)
        self._replace(current, stored, at_rest)
        self._delete_index(current)
        self._append_index(current.rid, stored.type, index_rows, stored.last_updated)
        self._append_change(stored, method, "update" if not current.deleted else "create")
        return stored

    def delete(self, current: StoredResource) -> StoredResource:
        """Mark a resource deleted (its history stays); later reads answer 410 Gone."""
        now = self.store.clock.now()
        stored = StoredResource(current.rid, current.type, current.id, current.version + 1, now, True, None)
        self._replace(current, stored, None)
        self._delete_index(current)
        self._append_change(stored, "DELETE", "delete")
        return stored

    def flush(self) -> None:
        """Write buffered rows now (reads in this unit of work must see them)."""
        if self._reindexed:
            self._clear_index()
        if self._new:
            new, self._new = self._new, []
            self._created = set()
            rids = self._allocate_rids(len(new))
            rows = []
            rid_by_key = {}
            for rid, (row, index_rows) in zip(rids, new):
                rows.append((rid,) + row)
                rid_by_key[(row[0], row[1])] = rid
                self._append_index(rid, row[0], index_rows, row[3])
            self._bulk_insert("resources", rows)
            pending = self._appends.pop("pending_history", [])
            self._appends.setdefault("resource_history", []).extend(
                (rid_by_key[(row[2], row[3])],) + row[1:] for row in pending)
        appends, self._appends = self._appends, {}
        for table, rows in appends.items():
            if rows:
                self._bulk_insert(table, rows)
        if self._superseded:  # after the appends: a version written and superseded since the last flush has its row now
            superseded, self._superseded = self._superseded, []
            self._executemany(self._sql["superseded"], superseded)

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _rid_of(res_type: str, res_id: str):
        return (select(resources.c.rid).where(resources.c.res_type == res_type, resources.c.res_id == res_id)
                .scalar_subquery())

    def _allocate_rids(self, n: int) -> list[int]:
        if self.store.dialect == "postgresql":
            return self.conn.exec_driver_sql(self._sql["rids"], (n,)).scalars().all()
        # SQLite writers hold the database's write lock (BEGIN IMMEDIATE), so max + 1 is ours alone.
        top = self.conn.exec_driver_sql(self._sql["top_rid"]).scalar_one()
        return list(range(top + 1, top + 1 + n))

    def _executemany(self, sql: str, rows: list[tuple]) -> None:
        driver = self.conn.connection.driver_connection
        if self.store.dialect == "postgresql":
            with driver.cursor() as cursor:
                cursor.executemany(sql, rows)
        else:
            driver.executemany(sql, rows)

    def _bulk_insert(self, table: str, rows: list[tuple]) -> None:
        columns = _BULK_COLUMNS[table]
        driver = self.conn.connection.driver_connection
        if self.store.dialect == "postgresql":
            with driver.cursor() as cursor:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            placeholders = ", ".join("?" * len(columns))
            driver.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)

    def _replace(self, current: StoredResource, stored: StoredResource, at_rest: str | None) -> None:
        changed = self.conn.exec_driver_sql(self._sql["replace"], (
            stored.version, stored.last_updated, stored.deleted, at_rest, current.rid, current.version))
        if changed.rowcount != 1:
            raise Conflict(f"{current.type}/{current.id} was changed by another request; read it again and retry")
        if current.content is not None:
            self._superseded.append((self.store.protection.sealed_text(current.content), current.rid, current.version))

    def _opened(self, row) -> StoredResource:
        """A row as a StoredResource with its sealed identifier values opened (most rows hold none)."""
        content = row[6]
        if content is not None and ENCRYPTED_VALUE in content:
            return StoredResource(*row[:6], self.store.protection.open_text(content), *row[7:])
        return StoredResource(*row)

    def _append_change(self, stored: StoredResource, method: str, interaction: str, publish: bool = True) -> None:
        # History rows of new resources wait for their rid; the current version's content stays in `resources`.
        history = (stored.rid, stored.version, stored.type, stored.id, stored.last_updated, method, None)
        self._appends.setdefault("resource_history" if stored.rid else "pending_history", []).append(history)
        if publish:
            self._appends.setdefault("outbox", []).append(
                (stored.type, stored.id, stored.version, interaction, stored.last_updated))

    def _append_index(self, rid: int, res_type: str, index_rows, last_updated: int) -> None:
        for name, rows in index_rows.tables():
            bucket = self._appends.setdefault(f"idx_{name}", [])
            key = (rid, res_type)
            bucket.extend(key + row for row in rows)
        if index_rows.text is not None:
            self._appends.setdefault("idx_fulltext", []).append((rid, res_type, *index_rows.text))
        if index_rows.position:
            self._appends.setdefault("idx_position", []).extend((rid, res_type, *p) for p in index_rows.position)
        if index_rows.contained:
            inner_rids = self._contained_rids(len(index_rows.contained))
            for inner_rid, (inner_type, inner_id, inner_rows) in zip(inner_rids, index_rows.contained):
                self._appends.setdefault("contained_resources", []).append(
                    (inner_rid, rid, inner_type, inner_id, last_updated, False))
                self._append_index(inner_rid, inner_type, inner_rows, last_updated)

    def _contained_rids(self, n: int) -> list[int]:
        """Fresh negative rids for contained resources: never a `resources` rid, never reused."""
        if self.store.dialect == "postgresql":
            return [-rid for rid in self._allocate_rids(n)]
        # the SQLite writer holds the write lock: the lowest rid so far, less one, is ours alone
        if self._next_contained_rid is None:
            lowest = self.conn.exec_driver_sql(self._sql["lowest_contained_rid"]).scalar_one()
            self._next_contained_rid = min(lowest or 0, 0) - 1
        start, self._next_contained_rid = self._next_contained_rid, self._next_contained_rid - n
        return list(range(start, start - n, -1))

    def _delete_index(self, current: StoredResource) -> None:
        """Have the index rows of `current` (and of the resources it contains) cleared at the next flush."""
        if current.rid in self._reindexed:
            # its rows of a version written since the last flush are still buffered: write them, to be cleared
            self.flush()
        self._reindexed[current.rid] = current.content is not None and '"contained"' in current.content

    def _clear_index(self) -> None:
        reindexed, self._reindexed = self._reindexed, {}
        rids = list(reindexed)
        for container_rid in (rid for rid, contains in reindexed.items() if contains):
            rids += self.conn.exec_driver_sql(self._sql["contained"], (container_rid,)).scalars().all()
        if self.store.dialect == "postgresql":
            self.conn.exec_driver_sql(_DELETE_INDEX_POSTGRESQL, {"rids": rids})
        else:
            driver = self.conn.connection.driver_connection
            keys = [(rid,) for rid in rids]
            for sql in _DELETE_INDEX_SQLITE:
                driver.executemany(sql, keys)
