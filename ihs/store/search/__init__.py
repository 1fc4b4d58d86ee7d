"""The FHIR search engine: query parsing against the SearchParameter registry, compiled to SQL.

- `search(uow, res_type, query, ...)` answers a search with a page of matches, the total and the
  _include/_revinclude resources (ihs/api/searching.py turns it into a Bundle);
- `find(uow, res_type, query, limit=...)` is the same search for conditional create, update, delete
  and conditional references;
- both take the access policy's `restriction` (visibility: the policy compiled into the SQL), so a
  caller's search never matches, counts or includes what they may not see;
- `supported_params(res_type)` lists what the engine answers, for the CapabilityStatement.

Modules: values (value syntax), query (names, modifiers, chains, result parameters), terminology
(:in, :above, ...), conditions (one parameter test as SQL), where (criteria, chains, _has,
compartments, _sort), ranges (two-sided date ranges), paging (the statement of a page: one WHERE, or
the driven candidates probed in page order), includes, run (paging, totals), custom (user-defined
SearchParameters), visibility (the access policy's restriction as SQL); criteria with SQL of their
own (special): contained (_contained), hierarchy (reference :above/:below), lists (_list),
fulltext (_text, _content), near, filtering (_filter); statements compiled once per query shape and
run as SQL text: shapes (the cache, and tracing values to bound parameters), slots (tagged values),
prepared (the page and the planner's counts).
"""
from __future__ import annotations

from ihs.fhir.errors import FhirError
from ihs.fhir.searchparams import registry
from ihs.store.search.query import composite_types
from ihs.store.search.run import SearchResult, search
from ihs.store.store import StoredResource, UnitOfWork

__all__ = ["find", "search", "supported_params", "SearchResult"]


def find(uow: UnitOfWork, res_type: str, query: list[tuple[str, str]], *, limit: int = 100,
         restriction=None) -> list[StoredResource]:
    """Current resources of `res_type` matching `query` (any search), at most `limit` of them;
    with a `restriction`, only those it shows."""
    criteria = [(name, value) for name, value in query if name not in ("_count", "_offset", "_total")]
    result = search(uow, res_type, criteria + [("_count", str(limit)), ("_total", "none")], restriction=restriction)
    if result.warnings:
        raise FhirError("; ".join(w.diagnostics for w in result.warnings), code="incomplete")
    return result.matches


def supported_params(res_type: str) -> list[tuple[str, str, str | None]]:
    """(code, type, definition url) of every search parameter this engine answers for `res_type`."""
    params = [("_filter", "special", None), ("_list", "special", None)]
    for param in registry().params_for(res_type).values():
        if _answerable(param):
            params.append((param.code, param.type, param.url))
    return sorted(params)


# answered by a module of their own (special.py), not from index rows of their own expression
_SPECIAL = {"_text", "_content", "Location.near"}


def _answerable(param) -> bool:
    if param.code in ("_id", "_lastUpdated", *_SPECIAL) or f"{param.resource_type}.{param.code}" in _SPECIAL:
        return True
    if not param.indexed:
        return False
    if param.type == "composite":
        try:
            composite_types(param)
        except ValueError:
            return False
    return True
