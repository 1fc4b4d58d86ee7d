"""A search's statements from the shape cache (ihs/store/search/shapes.py): the planner's counts and
the page itself, with the page's resources read in the same statement.

The page statement is the planned one (`SELECT rid [, count(*) OVER ()] ... ORDER BY ... LIMIT n + 1
OFFSET k`) as a subquery, joined back to `resources` by primary key for the rows of the page:

    SELECT p.rid, p.res_type, ..., p.content [, page.total]
    FROM (<page of rids>) AS page JOIN resources AS p ON p.rid = page.rid
    ORDER BY <the same order on p>

so a search is one statement plus the planner's counts, each sent as cached SQL text.
"""
from __future__ import annotations

from sqlalchemy import CompoundSelect, Integer, Text, bindparam, cast, func, literal, select

from ihs.store.schema import resources
from ihs.store.search import paging
from ihs.store.search.query import Criterion, ParsedQuery
from ihs.store.search.ranges import windows
from ihs.store.search.shapes import Compiled, Unknown, Walk, compile_statement, shapes
from ihs.store.search.slots import tag
from ihs.store.search.visibility import Traced
from ihs.store.search.where import _rows_of, _shared_criteria, choose_driver, order_by, staged_where
from ihs.store.store import StoredResource, UnitOfWork


def count_rows(uow: UnitOfWork, node, types, limit: int) -> int:
    """How many index rows the test `node` (a leaf or window) matches, counted up to `limit`."""
    walk = Walk(tag=False)
    try:
        key = ("count", uow.store.dialect, walk.node(node)[0], tuple(types) if types else None, limit)
    except Unknown:
        key = None
    compiled = shapes.get(key) if key is not None else None
    if compiled is None:
        traced = Walk(tag=True).node(node)[1] if key is not None else node
        rows, _ = _rows_of(traced, types)
        # counting a constant lets the database answer from the index alone where it can
        if isinstance(rows, CompoundSelect):  # a window over Periods (ranges.py)
            limited = select(literal(1)).select_from(rows.subquery()).limit(limit).subquery()
        else:
            limited = rows.with_only_columns(literal(1), maintain_column_froms=True).limit(limit).subquery()
        statement = select(func.count()).select_from(limited)
        if key is None:
            return uow.conn.execute(statement).scalar_one()
        compiled = compile_statement(uow.conn, statement, walk.keep)
        shapes.put(key, compiled)
    return run(uow, compiled, walk.slots)[0][0]


def page(uow: UnitOfWork, parsed: ParsedQuery, all_types: bool, sort: list[tuple], estimate,
         visible: Traced | None = None) -> tuple[list[StoredResource], int | None, bool] | None:
    """(the page's resources, the total if the statement counted it, whether more follow), or None
    when the shape is not one `Walk` traces (the caller then builds the statement itself);
    `visible`: the access policy's restriction, its values bound after the query's."""
    types, controls = parsed.types, parsed.controls
    walk = Walk(tag=False)
    try:
        criteria = tuple(tuple(walk.node(c.node)[0] for c in parsed.criteria[t]) for t in types)
    except Unknown:
        return None
    walk.value(controls.count + 1)
    walk.value(controls.offset)
    first = len(walk.slots)
    if visible is not None:
        walk.slots += visible.values
    counted: list[int] = []
    driver = None
    if _shared_criteria(parsed):
        def counting(node, node_types) -> int:
            counted.append(estimate(node, node_types))
            return counted[-1]

        nodes = windows([c.node for c in parsed.criteria[types[0]]])
        if nodes:
            index, rows = choose_driver(nodes, None if all_types else types, counting)
            driver = (index, rows is not None)
    key = ("page", uow.store.dialect, tuple(types), all_types, criteria, driver,
           tuple((walk.param(param), descending) for param, descending in sort), controls.total,
           visible.key if visible is not None else None)
    compiled = shapes.get(key)
    if compiled is None:
        restricted = visible.build(first) if visible is not None else None
        compiled = _compile_page(uow, parsed, all_types, sort, counted, walk.keep, restricted)
        if compiled is None:
            return None
        shapes.put(key, compiled)
    rows = run(uow, compiled, walk.slots)
    total = rows[0][7] if rows and compiled.extra else None
    has_next = len(rows) > controls.count
    return [stored(uow, row) for row in rows[:controls.count]], total, has_next


def resource_columns(uow: UnitOfWork, r) -> list:
    """The columns of a StoredResource from resources alias `r`, content as JSON text."""
    content = cast(r.c.content, Text) if uow.store.dialect == "postgresql" else r.c.content
    return [r.c.rid, r.c.res_type, r.c.res_id, r.c.version, r.c.last_updated, r.c.deleted, content]


def select_resources(uow: UnitOfWork, key: tuple, values: list, build) -> list[StoredResource]:
    """The resources `build(values)` selects (`resource_columns`), compiled once per `key` and number
    of values; `build` must use the values it is given, which are tagged the first time."""
    key = ("resources", uow.store.dialect, key, len(values))
    compiled = shapes.get(key)
    if compiled is None:
        compiled = compile_statement(uow.conn, build([tag(value, (i, ())) for i, value in enumerate(values)]), [])
        shapes.put(key, compiled)
    return [stored(uow, row) for row in run(uow, compiled, values)]


def run(uow: UnitOfWork, compiled: Compiled, slots: list) -> list[tuple]:
    """The rows of a compiled shape with these values, through the driver's own cursor (the SQL is final)."""
    cursor = uow.conn.connection.cursor()
    try:
        cursor.execute(compiled.sql, compiled.parameters(slots))
        return cursor.fetchall()
    finally:
        cursor.close()


def stored(uow: UnitOfWork, row: tuple) -> StoredResource:
    """A row of (rid, res_type, res_id, version, last_updated, deleted, content, ...) as a StoredResource."""
    # the driver's own row: SQLite gives `deleted` as 0/1
    return uow._opened((row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6]))


def _compile_page(uow: UnitOfWork, parsed: ParsedQuery, all_types: bool, sort: list[tuple],
                  counted: list[int], keep: list, restricted=None) -> Compiled | None:
    """Build the page statement from a copy of `parsed` with traced values, with the planner's
    choices replayed from `counted`, ANDed with the `restricted` condition (traced too); None if the
    statement would not be the one `page` keyed."""
    walk = Walk(tag=True)
    criteria = {t: [Criterion(c.name, c.value, walk.node(c.node)[1]) for c in parsed.criteria[t]]
                for t in parsed.types}
    limit, offset = walk.value(parsed.controls.count + 1), walk.value(parsed.controls.offset)
    traced = ParsedQuery(parsed.types, criteria, parsed.controls, parsed.issues, parsed.pending)
    replay = iter(counted)

    def replayed(node, node_types) -> int:
        found = next(replay, None)
        if found is None:
            raise Unknown("the planner asked for another count")
        return found

    try:
        where, probes, driven = staged_where(traced, resources, all_types=all_types, estimate=replayed)
    except Unknown:
        return None
    if restricted is not None:
        where = where & restricted
    r, p = resources, resources.alias("page_resource")
    unfiltered = not any(parsed.criteria[t] for t in parsed.types)
    counted = paging.counts(driven, probes, sort, unfiltered, parsed.controls.total)
    rids = paging.page_rids(uow.store.dialect, r, where, probes, sort, counted=counted,
                            limit=bindparam("page_limit", limit, type_=Integer),
                            offset=bindparam("page_offset", offset, type_=Integer)).subquery("page")
    statement = (select(*resource_columns(uow, p), *([rids.c.total] if counted else []))
                 .select_from(rids.join(p, p.c.rid == rids.c.rid)).order_by(*order_by(sort, p)))
    return compile_statement(uow.conn, statement, keep, extra=counted)

