"""The tables of the FHIR store (documented one by one in docs/storage.md).

`resources` holds the current version of every resource, `resource_history` every version
ever written, the `idx_*` tables the search-index rows of current versions (one table per
SearchParameter type, keyed by the resource's surrogate `rid`; idx_fulltext and idx_position for
_text/_content and near), `contained_resources` the resources inside others (for _contained),
and `outbox` one row per change for the event bus. All are written in one database transaction per change.
"""
from __future__ import annotations

from sqlalchemy import (DDL, BigInteger, Boolean, Column, Float, Index, Integer, MetaData, PrimaryKeyConstraint,
                        String, Table, Text, UniqueConstraint, event, literal_column, text)
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
# PostgreSQL: the columns a search reads of each candidate (its type, id, order and liveness) by rid,
# from the index alone, without visiting the row and its JSON (SQLite's rowid table serves it).
Index("resources_rid_columns", resources.c.rid,
      postgresql_include=["res_type", "res_id", "last_updated", "deleted"]).ddl_if(dialect="postgresql")

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


def _index_table(name: str, *columns: Column, indexes: list[tuple[str, ...]],
                 covering: dict[str, tuple[str, ...]] | None = None) -> Table:
    """An idx_* table. On PostgreSQL each (res_type, param, ...) index also carries `rid` (and the columns
    `covering` names for it), so a driving test and the planner's counts are read from the index alone."""
    table = Table(
        f"idx_{name}", metadata,
        Column("rid", RowId, nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
        Index(f"idx_{name}_rid", "rid"),
    )
    for cols in indexes:
        index_name = f"idx_{name}_{'_'.join(cols)}"
        extra = (covering or {}).get(index_name, ())
        Index(index_name, *(table.c[c] for c in cols),
              postgresql_include=[*extra, "rid"] if cols[0] == "res_type" else [])
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
    indexes=[("res_type", "param", "low"), ("res_type", "param", "high")],
    covering={"idx_date_res_type_param_low": ("high",), "idx_date_res_type_param_high": ("low",)})
# Date values longer than this (Periods: a long stay, an open-ended care plan) are few; their own partial
# index lets a range search bound the start of every shorter one (ihs/store/search/ranges.py).
LONG_DATE = 86_400_000_000  # a day, in microseconds
# a constant, not a bound value: the planners use a partial index only for a query naming its predicate
LONG_ROWS = idx_date.c.high - idx_date.c.low > literal_column(str(LONG_DATE))
Index("idx_date_long", idx_date.c.res_type, idx_date.c.param, idx_date.c.high,
      postgresql_where=LONG_ROWS, sqlite_where=LONG_ROWS, postgresql_include=["low", "rid"])
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

# Resources contained in another (Resource.contained), searchable with _contained: one row each, keyed
# by a negative rid (never a `resources` rid), whose index rows sit in the idx_* tables beside the
# rows of ordinary resources. The row lives and dies with the container's current version.
contained_resources = Table(
    "contained_resources", metadata,
    Column("rid", RowId, primary_key=True, autoincrement=False),
    Column("container_rid", RowId, nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),  # the id inside the container (without '#')
    Column("last_updated", Micros, nullable=False),  # the container's
    Column("deleted", Boolean, nullable=False, default=False),  # always false: lets a search treat it as `resources`
    Index("contained_resources_container", "container_rid"),
)

# The words of current versions for _text (the narrative) and _content (the narrative and every other
# string value), folded like string search values (ihs/fhir/fulltext.py). Searched through an FTS5 table on SQLite (kept in step by
# triggers) and through a GIN index over to_tsvector('simple', ...) on PostgreSQL.
# PostgreSQL: one GIN index over the words of both columns, the narrative's weighted A so that _text
# asks for lexemes of weight A (word:A) and _content for any; the search repeats this expression
FULLTEXT_VECTOR = ("(setweight(to_tsvector('simple', coalesce(narrative, '')), 'A') || "
                   "to_tsvector('simple', coalesce(content, '')))")
idx_fulltext = Table(
    "idx_fulltext", metadata,
    Column("rid", RowId, primary_key=True, autoincrement=False),
    Column("res_type", String(64), nullable=False),
    Column("narrative", Text),  # the narrative's words
    Column("content", Text),  # the words of every other string value (_content searches both)
    Index("idx_fulltext_words", text(f"({FULLTEXT_VECTOR})"), postgresql_using="gin").ddl_if(dialect="postgresql"),
)

_FTS_DDL = (
    "CREATE VIRTUAL TABLE idx_fulltext_fts USING fts5(narrative, content, content='idx_fulltext', "
    "content_rowid='rid', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER idx_fulltext_insert AFTER INSERT ON idx_fulltext BEGIN "
    "INSERT INTO idx_fulltext_fts (rowid, narrative, content) VALUES (new.rid, new.narrative, new.content); END",
    "CREATE TRIGGER idx_fulltext_delete AFTER DELETE ON idx_fulltext BEGIN "
    "INSERT INTO idx_fulltext_fts (idx_fulltext_fts, rowid, narrative, content) "
    "VALUES ('delete', old.rid, old.narrative, old.content); END",
)
for _statement in _FTS_DDL:
    event.listen(idx_fulltext, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
event.listen(idx_fulltext, "before_drop", DDL("DROP TABLE IF EXISTS idx_fulltext_fts").execute_if(dialect="sqlite"))

# Location.position for `near`: the latitude band is searched by index, then the exact great-circle
# test compares points on the unit sphere (x, y, z) by their chord, which needs no trigonometry in SQL.
idx_position = Table(
    "idx_position", metadata,
    Column("rid", RowId, nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("x", Float, nullable=False),
    Column("y", Float, nullable=False),
    Column("z", Float, nullable=False),
    Index("idx_position_rid", "rid"),
    Index("idx_position_latitude", "res_type", "latitude"),
)
