"""The tables of the FHIR store (documented one by one in docs/storage.md).

`resources` holds the current version of every resource, `resource_history` every version
ever written, the `idx_*` tables the search-index rows of current versions (one table per
SearchParameter type, keyed by the resource's surrogate `rid`), and `outbox` one row per
change for the event bus. All are written in one database transaction per change.
"""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Float, Index, Integer, MetaData, PrimaryKeyConstraint,
                        String, Table, Text, UniqueConstraint)
from sqlalchemy.dialects import postgresql

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants a bigint identity.
RowId = BigInteger().with_variant(Integer(), "sqlite")
# Resource JSON: text in SQLite; in PostgreSQL the json type, which checks the JSON and supports the
# JSON operators but keeps the text as written (jsonb would rewrite numbers such as FHIR decimals).
Content = Text().with_variant(postgresql.JSON(), "postgresql")
# Times are integer microseconds since the epoch, UTC: exact, portable, and range-comparable.
Micros = BigInteger

resources = Table(
    "resources", metadata,
    Column("rid", RowId, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", Micros, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Content),
    UniqueConstraint("res_type", "res_id", name="resources_type_id"),
    Index("resources_type_updated", "res_type", "last_updated"),
    Index("resources_id", "res_id"),
)

resource_history = Table(
    "resource_history", metadata,
    Column("rid", RowId, nullable=False),
    Column("version", Integer, nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("last_updated", Micros, nullable=False),
    Column("method", String(8), nullable=False),  # POST | PUT | PATCH | DELETE
    Column("content", Content),  # NULL for a deletion
    PrimaryKeyConstraint("rid", "version", name="resource_history_pk"),
    Index("resource_history_updated", "last_updated"),
    Index("resource_history_type_updated", "res_type", "last_updated"),
)

outbox = Table(
    "outbox", metadata,
    Column("seq", RowId, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("interaction", String(8), nullable=False),  # create | update | delete
    Column("created_at", Micros, nullable=False),
    Column("dispatched_at", Micros),
    Index("outbox_pending", "dispatched_at", "seq"),
)


# user-defined SearchParameters: whether their index rows are backfilled (ihs/store/reindex.py)
search_param_state = Table(
    "search_param_state", metadata,
    Column("rid", RowId, primary_key=True, autoincrement=False),  # the SearchParameter resource's rid
    Column("version", Integer, nullable=False),  # the version whose rows are (being) backfilled
    Column("status", String(16), nullable=False),  # pending | ready
    Column("updated_at", Micros, nullable=False),
)


def _index_table(name: str, *columns: Column, indexes: list[tuple[str, ...]]) -> Table:
    table = Table(
        f"idx_{name}", metadata,
        Column("rid", RowId, nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
        Index(f"idx_{name}_rid", "rid"),
    )
    for cols in indexes:
        Index(f"idx_{name}_{'_'.join(cols)}", *(table.c[c] for c in cols))
    return table


idx_string = _index_table(
    "string", Column("value", Text), Column("exact", Text),
    indexes=[("res_type", "param", "value")])
idx_token = _index_table(
    "token", Column("system", Text), Column("code", Text), Column("text", Text),
    indexes=[("res_type", "param", "code", "system")])
idx_reference = _index_table(
    "reference", Column("target_type", String(64)), Column("target_id", Text), Column("url", Text),
    indexes=[("res_type", "param", "target_id", "target_type"), ("target_id", "target_type")])
idx_date = _index_table(
    "date", Column("low", Micros), Column("high", Micros),
    indexes=[("res_type", "param", "low"), ("res_type", "param", "high")])
idx_number = _index_table(
    "number", Column("value", Float),
    indexes=[("res_type", "param", "value")])
idx_quantity = _index_table(
    "quantity", Column("value", Float), Column("system", Text), Column("code", Text),
    Column("canonical_value", Float), Column("canonical_code", String(100)),
    indexes=[("res_type", "param", "canonical_code", "canonical_value"), ("res_type", "param", "value")])
idx_uri = _index_table(
    "uri", Column("uri", Text),
    indexes=[("res_type", "param", "uri")])
idx_composite = _index_table(
    "composite", Column("a_system", Text), Column("a_code", Text),
    Column("b_system", Text), Column("b_code", Text),
    Column("b_low", Float), Column("b_high", Float), Column("b_string", Text),
    indexes=[("res_type", "param", "a_code", "b_code")])

INDEX_TABLES: dict[str, Table] = {
    "string": idx_string, "token": idx_token, "reference": idx_reference, "date": idx_date,
    "number": idx_number, "quantity": idx_quantity, "uri": idx_uri, "composite": idx_composite,
}
INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.columns if c.name not in ("rid", "res_type")) for name, table in INDEX_TABLES.items()
}
