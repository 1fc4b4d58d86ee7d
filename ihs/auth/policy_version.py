"""A counter of changes to what the access policy caches, shared by every worker on the database.

The policy keeps treatment relationships and Consents in a per-process cache. Each worker reads
`policy_version` (one row) once per unit of work that consults the cache, and drops its cache when
the number moved. A trigger on the outbox bumps it in the very transaction that writes a Consent,
Encounter, CareTeam ... (every change writes its outbox row), so the bump commits with the change:
whatever the write path (API, Bundle, CLI, event handler), no worker can see the new number before
the change itself, and every worker sees it on its next request.
"""
from __future__ import annotations

from weakref import WeakKeyDictionary

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, inspect
from sqlalchemy.engine import Engine

# types whose changes can alter treatment relationships, proxies or Consents
RELATIONSHIP_TYPES = frozenset({"Consent", "Encounter", "EpisodeOfCare", "CareTeam", "Task", "RelatedPerson",
                                "PractitionerRole", "Organization", "Patient"})

metadata = MetaData()
_installed: WeakKeyDictionary = WeakKeyDictionary()  # engine -> whether its database has the counter

policy_version = Table(
    "policy_version", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("version", BigInteger, nullable=False),
)

_READ_SQL = "SELECT version FROM policy_version WHERE id = 1"


def _trigger_ddl(dialect: str, types: frozenset[str]) -> list[str]:
    listed = ", ".join(f"'{t}'" for t in sorted(types))
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION ihs_bump_policy_version() RETURNS trigger AS $$ BEGIN "
            f"IF EXISTS (SELECT 1 FROM added WHERE res_type IN ({listed})) THEN "
            "UPDATE policy_version SET version = version + 1 WHERE id = 1; END IF; RETURN NULL; END $$ "
            "LANGUAGE plpgsql",
            # once per statement: a Bundle's bulk COPY bumps the row once, not once per resource
            "CREATE OR REPLACE TRIGGER ihs_policy_version AFTER INSERT ON outbox REFERENCING NEW TABLE AS added "
            "FOR EACH STATEMENT EXECUTE FUNCTION ihs_bump_policy_version()",
        ]
    return [
        f"CREATE TRIGGER ihs_policy_version AFTER INSERT ON outbox WHEN NEW.res_type IN ({listed}) "
        "BEGIN UPDATE policy_version SET version = version + 1 WHERE id = 1; END",
    ]


_TRIGGER_EXISTS = {"sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'ihs_policy_version'",
                   "postgresql": "SELECT 1 FROM pg_trigger WHERE tgname = 'ihs_policy_version'"}


def install(engine: Engine) -> None:
    """Create the counter and the outbox trigger (idempotent; nothing before the store's tables exist)."""
    if _installed.get(engine) or not inspect(engine).has_table("outbox"):
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # workers starting together replace the function one by one
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4779231)")
        metadata.create_all(conn)
        if conn.exec_driver_sql(_READ_SQL).first() is None:
            conn.exec_driver_sql("INSERT INTO policy_version (id, version) VALUES (1, 0)")
        if conn.exec_driver_sql(_TRIGGER_EXISTS[engine.dialect.name]).first() is None:
            for statement in _trigger_ddl(engine.dialect.name, RELATIONSHIP_TYPES):
                conn.exec_driver_sql(statement)
    _installed[engine] = True


def installed(engine: Engine) -> bool:
    """Whether the database has the counter (looked up once per engine)."""
    known = _installed.get(engine)
    if known is None:
        known = _installed[engine] = inspect(engine).has_table("policy_version")
    return known


def current(conn) -> int:
    """The counter as this connection's transaction sees it."""
    row = conn.exec_driver_sql(_READ_SQL).first()
    return row[0] if row else 0
