"""Running a search: one SQL statement for a page of matches, the total, then the includes."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import and_, func, select

from ihs.fhir.errors import FhirError, Issue
from ihs.fhir.searchparams import registry
from ihs.store.schema import resources
from ihs.store.search import contained, includes, paging, prepared, visibility
from ihs.store.search.custom import ParamLookup
from ihs.store.search.query import ParsedQuery, parse_query, sort_param
from ihs.store.search.where import DRIVER_ROWS, compartment_condition, staged_where
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
    rows: object = resources  # what `where` selects from (contained resources too, with _contained)


def plan(uow: UnitOfWork, res_type: str | None, query: list[tuple[str, str]], *, base: str | None = None,
         lenient: bool = False, compartment: tuple[str, str] | None = None,
         compartment_types: list[str] | None = None,
         restriction: visibility.RestrictionOf | None = None) -> Plan:
    """Parse `query` and compile it; `page` is None when the search has nothing to run (pending parameters).

    `restriction` (the access policy's, ihs/store/search/visibility.py) hides what the caller may not see.
    """
    parsed, all_types, lookup = _parse(uow, res_type, query, base, lenient, compartment_types)
    if parsed.pending:
        return Plan(parsed, None, None)
    return _plan(uow, parsed, res_type, all_types, lookup, compartment, restriction)


def _parse(uow: UnitOfWork, res_type: str | None, query: list[tuple[str, str]], base: str | None, lenient: bool,
           compartment_types: list[str] | None) -> tuple[ParsedQuery, bool, ParamLookup]:
    if compartment_types is not None:
        types, all_types = compartment_types, False
    else:
        types, all_types = searched_types(res_type, query)
    lookup = ParamLookup(uow)
    parsed = parse_query(types, query, lookup, base=base, lenient=lenient, system_level=res_type is None)
    return parsed, all_types, lookup


def _estimate_rows(uow: UnitOfWork):
    def estimate(node, node_types) -> int:
        return prepared.count_rows(uow, node, node_types, DRIVER_ROWS)
    return estimate


def _plan(uow: UnitOfWork, parsed: ParsedQuery, res_type: str | None, all_types: bool, lookup: ParamLookup,
          compartment: tuple[str, str] | None, restriction: visibility.RestrictionOf | None) -> Plan:
    types = parsed.types
    r = contained.searched(parsed.controls.contained)
    where, probes, driven = staged_where(parsed, r, all_types=all_types, estimate=_estimate_rows(uow))
    if compartment:
        where = where & compartment_condition(r, compartment[0], compartment[1], types)
    if parsed.controls.contained != "false":
        where, probes = and_(where, *probes), []
        if parsed.controls.contained_type == "container":
            where, r = contained.containers(where, r), resources
    if restriction is not None:
        if r is not resources:  # contained resources are shown with their containers
            visible = visibility.container_condition(uow, restriction, r)
        elif parsed.controls.contained != "false":  # the containers, of any type
            visible = visibility.condition(uow, visibility.restriction_for(restriction, None), r, None)
        else:
            visible = visibility.condition(uow, visibility.restriction_for(restriction, res_type), r,
                                           None if all_types else types, drive=not compartment)
        if visible is not None:
            where = where & visible
            if parsed.controls.total == "estimate":
                parsed.controls.total = "accurate"  # the planner's estimate would count hidden resources
    controls = parsed.controls
    sort = [(sort_param(types[0], code, lookup), descending) for code, descending in controls.sort]
    unfiltered = not compartment and not any(parsed.criteria[t] for t in types)
    counted = paging.counts(driven, probes, sort, unfiltered, controls.total)
    page = paging.page_rids(uow.store.dialect, r, where, probes, sort, counted=counted,
                            limit=controls.count + 1, offset=controls.offset)
    return Plan(parsed, and_(where, *probes), page, counted, unfiltered, r)


def search(uow: UnitOfWork, res_type: str | None, query: list[tuple[str, str]], *, base: str | None = None,
           lenient: bool = False, compartment: tuple[str, str] | None = None,
           compartment_types: list[str] | None = None,
           restriction: visibility.RestrictionOf | None = None) -> SearchResult:
    """Run `query` over `res_type` (None: system search by `_type`), optionally inside a compartment;
    with a `restriction`, hidden resources are neither matched, counted nor included."""
    uow.flush()
    parsed, all_types, lookup = _parse(uow, res_type, query, base, lenient, compartment_types)
    result = SearchResult(parsed, offset=parsed.controls.offset, warnings=list(parsed.issues))
    if parsed.pending:
        result.warnings.append(Issue(
            f"search parameter(s) {', '.join(parsed.pending)} are defined but their index is still being built; "
            "no results are returned until `ihs reindex` (POST /$reindex) has finished",
            code="incomplete", severity="warning"))
        return result
    controls = parsed.controls
    fast = None
    cached, visible = _prepared(uow, parsed, res_type, all_types, compartment, restriction)
    if cached:
        if visible is not None and controls.total == "estimate":
            controls.total = "accurate"  # the planner's estimate would count hidden resources
        sort = [(sort_param(parsed.types[0], code, lookup), descending) for code, descending in controls.sort]
        fast = prepared.page(uow, parsed, all_types, sort, _estimate_rows(uow), visible)
    if fast is not None:
        result.matches, counted, result.has_next = fast
        fetched = len(result.matches)
        _include(uow, result, restriction)
        unfiltered = not any(parsed.criteria[t] for t in parsed.types)
        result.total = counted if counted is not None else _total(
            uow, result, lambda: _plan(uow, parsed, res_type, all_types, lookup, compartment, restriction),
            fetched, unfiltered)
        return result
    compiled = _plan(uow, parsed, res_type, all_types, lookup, compartment, restriction)
    if controls.summary == "count" or controls.count == 0:
        result.total = _count(uow, compiled.where, compiled.rows) if controls.total != "none" else None
        return result
    rows = uow.conn.execute(compiled.page).all()
    counted = rows[0][1] if rows and compiled.counts else None
    result.has_next = len(rows) > controls.count
    rids = [row[0] for row in rows[:controls.count]]
    result.matches = contained.load(uow, rids)
    _include(uow, result, restriction)
    result.total = counted if counted is not None else _total(uow, result, lambda: compiled, len(rids),
                                                              compiled.unfiltered)
    return result


def _include(uow: UnitOfWork, result: SearchResult, restriction=None) -> None:
    """Resolve includes; a page whose includes overflow is served with fewer matches (has_next then)."""
    directives = result.parsed.controls.includes
    if not directives:
        return
    while True:
        try:
            result.included = includes.resolve(uow, directives, result.matches, restriction=restriction)
            return
        except includes.Overflow:
            if len(result.matches) == 1:
                raise includes.too_many(includes.MAX_INCLUDED) from None
            result.matches = result.matches[:len(result.matches) // 2]
            result.has_next = True


def _total(uow: UnitOfWork, result: SearchResult, planned: Callable[[], Plan], fetched: int,
           unfiltered: bool) -> int | None:
    """Bundle.total by `_total` when the page statement did not count it; by default left out unless
    cheap (the last page, or no criteria and at most TOTAL_CAP resources). `planned` gives the
    search's WHERE clause, built only when a count needs it."""
    mode = result.parsed.controls.total
    if mode == "none":
        return None
    if not result.has_next and fetched == len(result.matches) and (fetched or result.offset == 0):
        return result.offset + fetched  # the last page: every match has been seen
    if mode not in ("accurate", "estimate") and not unfiltered:
        return None
    compiled = planned()
    where = compiled.where
    if mode == "estimate" and uow.store.dialect == "postgresql":
        return _estimate(uow, where, compiled.rows)
    if mode in ("accurate", "estimate"):
        return _count(uow, where, compiled.rows)
    if unfiltered:
        capped = select(func.count()).select_from(
            select(compiled.rows.c.rid).where(where).limit(TOTAL_CAP + 1).subquery())
        found = uow.conn.execute(capped).scalar_one()
        return found if found <= TOTAL_CAP else None
    return None


def _count(uow: UnitOfWork, where, rows=resources) -> int:
    return uow.conn.execute(select(func.count()).select_from(rows).where(where)).scalar_one()


def _estimate(uow: UnitOfWork, where, rows=resources) -> int:
    """PostgreSQL's planner estimate of the number of matches (no scan)."""
    stmt = select(rows.c.rid).where(where)
    compiled = stmt.compile(dialect=uow.conn.dialect, compile_kwargs={"render_postcompile": True})
    plan = uow.conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def _prepared(uow: UnitOfWork, parsed: ParsedQuery, res_type: str | None, all_types: bool, compartment,
              restriction: visibility.RestrictionOf | None) -> tuple[bool, visibility.Traced | None]:
    """Whether the page can come from the shape cache (prepared.py), and the restriction's part of its
    statement: a plain search of resources, of one type when the restriction hides something;
    counting only (`_summary=count`, `_count=0`) builds as before."""
    controls = parsed.controls
    if compartment or controls.contained != "false" or controls.summary == "count" or controls.count == 0:
        return False, None
    if restriction is None:
        return True, None
    rule = visibility.restriction_for(restriction, res_type)
    if visibility.shows_everything(rule, None if all_types else parsed.types):
        return True, None
    if all_types or len(parsed.types) != 1:
        return False, None
    visible = visibility.traced(uow, rule, parsed.types[0])
    return visible is not None, visible
