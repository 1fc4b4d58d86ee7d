"""The resources analytics reads: from the store through search, or from NDJSON files.

`store_resources` pages through current resources of one type in `_lastUpdated` order with a
keyset (`_lastUpdated=ge<last seen>`), so a scan of a million resources costs a million rows
read once, never the quadratic cost of `_offset` paging. `until` bounds the scan at an instant
(an export's transactionTime): resources changed later are left to the next `_since` export.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import parse_qsl

import orjson

from ihs.fhir.errors import FhirError
from ihs.store.search import search
from ihs.store.store import Store, StoredResource, instant

PAGE = 1000


def store_resources(store: Store, res_type: str, query: Iterable[tuple[str, str]] = (), *,
                    since: int | None = None, until: int | None = None, page: int = PAGE,
                    restriction=None) -> Iterator[StoredResource]:
    """Current `res_type` resources matching `query` (search parameters), changed in [since, until] (microseconds);
    with an access-policy `restriction` (ihs/auth/restriction.py), only those it shows."""
    base = list(query) + [("_sort", "_lastUpdated"), ("_total", "none")]
    if until is not None:
        base.append(("_lastUpdated", f"le{instant(until)}"))
    floor, seen_at_floor = since, set()
    while True:
        criteria = base + [("_count", str(page))]
        if floor is not None:
            criteria.append(("_lastUpdated", f"ge{instant(floor)}"))
        with store.session() as uow:
            result = search(uow, res_type, criteria, restriction=restriction)
        if result.warnings:
            raise FhirError("; ".join(w.diagnostics for w in result.warnings), code="incomplete")
        fresh = [m for m in result.matches if not (m.last_updated == floor and m.id in seen_at_floor)]
        yield from fresh
        if not result.has_next:
            return
        if not fresh:
            page *= 2  # more resources share one timestamp than a page holds: widen the page
            continue
        top = fresh[-1].last_updated
        if top != floor:
            floor, seen_at_floor = top, set()
        seen_at_floor.update(m.id for m in fresh if m.last_updated == top)


def type_filter_queries(type_filters: Iterable[str]) -> dict[str, list[list[tuple[str, str]]]]:
    """`_typeFilter` values (`Observation?code=1234-5&status=final`) as search queries per type."""
    queries: dict[str, list[list[tuple[str, str]]]] = {}
    for text in type_filters:
        res_type, mark, query = text.partition("?")
        if not mark or not res_type or not query:
            raise FhirError(f"_typeFilter '{text}' must read [type]?[search parameters]", expression="_typeFilter")
        queries.setdefault(res_type.strip(), []).append(parse_qsl(query, keep_blank_values=True))
    return queries


def filtered_resources(store: Store, res_type: str, queries: list[list[tuple[str, str]]] | None, *,
                       since: int | None = None, until: int | None = None,
                       restriction=None) -> Iterator[StoredResource]:
    """Resources of `res_type` matching any of `queries` (all of them when None), each once."""
    if not queries:
        yield from store_resources(store, res_type, since=since, until=until, restriction=restriction)
        return
    if len(queries) == 1:
        yield from store_resources(store, res_type, queries[0], since=since, until=until, restriction=restriction)
        return
    emitted: set[str] = set()
    for query in queries:
        for stored in store_resources(store, res_type, query, since=since, until=until, restriction=restriction):
            if stored.id not in emitted:
                emitted.add(stored.id)
                yield stored


def ndjson_resources(paths: Iterable[str | Path]) -> Iterator[dict]:
    """Resources from NDJSON files (gzip-compressed when named *.gz), blank lines skipped."""
    for path in paths:
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as lines:
            for line in lines:
                if line.strip():
                    yield orjson.loads(line)
