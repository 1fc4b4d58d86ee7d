"""Running a search: one SQL statement for a page of matches, the total, then the includes."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from sqlalchemy import func, literal, select

from ihs.fhir.errors import FhirError, Issue
from ihs.fhir.searchparams import registry
from ihs.store.schema import resources
from ihs.store.search import includes
from ihs.store.search.custom import ParamLookup
from ihs.store.search.query import ParsedQuery, parse_query, sort_param
from ihs.store.search.where import DRIVER_ROWS, compartment_condition, order_by, where_clause
from ihs.store.store import StoredResource, UnitOfWork

# by default a search without criteria counts its total up to this many resources and leaves it
# out beyond; _total=accurate always counts
TOTAL_CAP = int(os.environ.get("IHS_SEARCH_TOTAL_CAP", 2_000))


@dataclass
class SearchResult:
    """A page of a search: its matches, what _include/_revinclude added, and how to reach the rest."""

    parsed: ParsedQuery
    matches: list[StoredResource] = field(default_factory=list)
    included: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    offset: int = 0
    has_next: bool = False
    warnings: list[Issue] = field(default_factory=list)

    @property
    def count(self) -> int:
        return self.parsed.controls.count


def searched_types(res_type: str | None, query: list[tuple[str, str]]) -> tuple[list[str], bool]:
    """The types a search covers and whether that is every type: the one named, `_type`, or all."""
    if res_type is not None:
        return [res_type], False
    named = [t.strip() for name, value in query if name == "_type" for t in value.split(",") if t.strip()]
    known = registry().resource_types()
    unknown = [t for t in named if t not in known]
    if unknown:
        raise FhirError(f"search parameter '_type': {', '.join(unknown)} is not a resource type")
    return (list(dict.fromkeys(named)), False) if named else (known, True)


@dataclass
class Plan:
    """A parsed search and its SQL: the WHERE clause and the statement of one page of rids."""

    parsed: ParsedQuery
    where: object
    page: object
    counts: bool = False  # the page statement also counts every match (count(*) OVER ())
    unfiltered: bool = False  # no criteria at all


def plan(uow: UnitOfWork, res_type: str | None, query: list[tuple[str, str]], *, base: str | None = None,
         lenient: bool = False, compartment: tuple[str, str] | None = None,
         compartment_types: list[str] | None = None) -> Plan:
    """Parse `query` and compile it; `page` is None when the search has nothing to run (pending parameters)."""
    if compartment_types is not None:
        types, all_types = compartment_types, False
    else:
        types, all_types = searched_types(res_type, query)
    lookup = ParamLookup(uow)
    parsed = parse_query(types, query, lookup, base=base, lenient=lenient, system_level=res_type is None)
    if parsed.pending:
        return Plan(parsed, None, None)
    r = resources

    def estimate(rows) -> int:
        # counting a constant lets the database answer from the index alone where it can
        limited = rows.with_only_columns(literal(1), maintain_column_froms=True).limit(DRIVER_ROWS).subquery()
        return uow.conn.execute(select(func.count()).select_from(limited)).scalar_one()

    where, driven = where_clause(parsed, r, all_types=all_types, estimate=estimate)
    if compartment:
        where = where & compartment_condition(r, compartment[0], compartment[1], types)
    controls = parsed.controls
    sort = [(sort_param(types[0], code, lookup), descending) for code, descending in controls.sort]
    unfiltered = not compartment and not any(parsed.criteria[t] for t in types)
    # when every candidate is visited anyway (a driving test, or an ORDER BY of _sort), counting them
    # in the same statement is free; a walk in index order that stops at a full page is not
    counts = (driven or bool(sort)) and not unfiltered and controls.total != "none"
    columns = [r.c.rid, func.count().over()] if counts else [r.c.rid]
    page = (select(*columns).where(where).order_by(*order_by(sort, r))
            .limit(controls.count + 1).offset(controls.offset))
    return Plan(parsed, where, page, counts, unfiltered)


def search(uow: UnitOfWork, res_type: str | None, query: list[tuple[str, str]], *, base: str | None = None,
           lenient: bool = False, compartment: tuple[str, str] | None = None,
           compartment_types: list[str] | None = None) -> SearchResult:
    """Run `query` over `res_type` (None: system search by `_type`), optionally inside a compartment."""
    uow.flush()
    compiled = plan(uow, res_type, query, base=base, lenient=lenient, compartment=compartment,
                    compartment_types=compartment_types)
    parsed = compiled.parsed
    result = SearchResult(parsed, offset=parsed.controls.offset, warnings=list(parsed.issues))
    if parsed.pending:
        result.warnings.append(Issue(
            f"search parameter(s) {', '.join(parsed.pending)} are defined but their index is still being built; "
            "no results are returned until `ihs reindex` (POST /$reindex) has finished",
            code="incomplete", severity="warning"))
        return result
    controls = parsed.controls
    if controls.summary == "count" or controls.count == 0:
        result.total = _count(uow, compiled.where) if controls.total != "none" else None
        return result
    rows = uow.conn.execute(compiled.page).all()
    counted = rows[0][1] if rows and compiled.counts else None
    result.has_next = len(rows) > controls.count
    rids = [row[0] for row in rows[:controls.count]]
    result.matches = uow.current_by_rids(rids)
    _include(uow, result)
    result.total = counted if counted is not None else _total(uow, result, compiled, len(rids))
    return result


def _include(uow: UnitOfWork, result: SearchResult) -> None:
    """Resolve includes; a page whose includes overflow is served with fewer matches (has_next then)."""
    directives = result.parsed.controls.includes
    if not directives:
        return
    while True:
        try:
            result.included = includes.resolve(uow, directives, result.matches)
            return
        except includes.Overflow:
            if len(result.matches) == 1:
                raise includes.too_many(includes.MAX_INCLUDED) from None
            result.matches = result.matches[:len(result.matches) // 2]
            result.has_next = True


def _total(uow: UnitOfWork, result: SearchResult, compiled: Plan, fetched: int) -> int | None:
    """Bundle.total by `_total` when the page statement did not count it; by default left out unless
    cheap (the last page, or no criteria and at most TOTAL_CAP resources)."""
    mode, where = result.parsed.controls.total, compiled.where
    if mode == "none":
        return None
    if not result.has_next and fetched == len(result.matches) and (fetched or result.offset == 0):
        return result.offset + fetched  # the last page: every match has been seen
    if mode == "estimate" and uow.store.dialect == "postgresql":
        return _estimate(uow, where)
    if mode in ("accurate", "estimate"):
        return _count(uow, where)
    if compiled.unfiltered:
        capped = select(func.count()).select_from(
            select(resources.c.rid).where(where).limit(TOTAL_CAP + 1).subquery())
        found = uow.conn.execute(capped).scalar_one()
        return found if found <= TOTAL_CAP else None
    return None


def _count(uow: UnitOfWork, where) -> int:
    return uow.conn.execute(select(func.count()).select_from(resources).where(where)).scalar_one()


def _estimate(uow: UnitOfWork, where) -> int:
    """PostgreSQL's planner estimate of the number of matches (no scan)."""
    stmt = select(resources.c.rid).where(where)
    compiled = stmt.compile(dialect=uow.conn.dialect, compile_kwargs={"render_postcompile": True})
    plan = uow.conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])
