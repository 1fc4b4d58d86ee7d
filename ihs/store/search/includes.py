"""_include and _revinclude: the resources a page of matches refers to, or is referred to by.

Each directive is one query over idx_reference for the whole page (never one per match);
`:iterate` directives run again on what the previous round added until nothing new appears.
Nothing is cut short: when a page's includes exceed `MAX_INCLUDED`, `Overflow` tells the caller
to serve fewer matches on this page (the next link carries on from there).
"""
from __future__ import annotations

import os

from sqlalchemy import select

from ihs.fhir.errors import FhirError
from ihs.store.schema import idx_reference, resources
from ihs.store.search.query import Include
from ihs.store.store import StoredResource, UnitOfWork

MAX_INCLUDED = int(os.environ.get("IHS_SEARCH_MAX_INCLUDED", 5000))
_CHUNK = 500


class Overflow(Exception):
    """The includes of this page exceed MAX_INCLUDED."""


def resolve(uow: UnitOfWork, directives: list[Include], matches: list[StoredResource], *,
            limit: int | None = None) -> list[StoredResource]:
    """The resources `directives` add to `matches`, without duplicates, in the order found."""
    if not directives or not matches:
        return []
    limit = MAX_INCLUDED if limit is None else limit
    seen = {(m.type, m.id) for m in matches}
    included: list[StoredResource] = []
    sources, first = list(matches), True
    while sources:
        active = [d for d in directives if d.iterate or first]
        if not active:
            break
        found = []
        for directive in active:
            for resource in _follow(uow, directive, sources):
                key = (resource.type, resource.id)
                if key not in seen:
                    seen.add(key)
                    found.append(resource)
            if len(included) + len(found) > limit:
                raise Overflow()
        included.extend(found)
        sources, first = found, False
    return included


def _follow(uow: UnitOfWork, directive: Include, sources: list[StoredResource]) -> list[StoredResource]:
    if directive.source is not None and not directive.reverse:
        sources = [s for s in sources if s.type == directive.source]
    if not sources:
        return []
    return _reverse(uow, directive, sources) if directive.reverse else _forward(uow, directive, sources)


def _forward(uow: UnitOfWork, directive: Include, sources: list[StoredResource]) -> list[StoredResource]:
    i = idx_reference.c
    targets: dict[tuple[str, str], None] = {}
    for start in range(0, len(sources), _CHUNK):
        rids = [s.rid for s in sources[start:start + _CHUNK]]
        stmt = select(i.target_type, i.target_id).where(i.rid.in_(rids), i.target_type.is_not(None),
                                                        i.target_id.is_not(None))
        if directive.param:
            stmt = stmt.where(i.param == directive.param)
        if directive.target:
            stmt = stmt.where(i.target_type == directive.target)
        for row in uow.conn.execute(stmt):
            targets[(row[0], row[1])] = None
    return _load_by_key(uow, list(targets))


def _reverse(uow: UnitOfWork, directive: Include, targets: list[StoredResource]) -> list[StoredResource]:
    i = idx_reference.c
    by_type: dict[str, list[str]] = {}
    for t in targets:
        if directive.target is None or t.type == directive.target:
            by_type.setdefault(t.type, []).append(t.id)
    rids: dict[int, None] = {}
    for target_type, ids in by_type.items():
        for start in range(0, len(ids), _CHUNK):
            stmt = select(i.rid).where(i.target_id.in_(ids[start:start + _CHUNK]), i.target_type == target_type)
            if directive.source:
                stmt = stmt.where(i.res_type == directive.source)
            if directive.param:
                stmt = stmt.where(i.param == directive.param)
            for (rid,) in uow.conn.execute(stmt):
                rids[rid] = None
    return uow.current_by_rids(sorted(rids))


def _load_by_key(uow: UnitOfWork, keys: list[tuple[str, str]]) -> list[StoredResource]:
    r = resources.c
    by_type: dict[str, list[str]] = {}
    for res_type, res_id in keys:
        by_type.setdefault(res_type, []).append(res_id)
    rids: list[int] = []
    for res_type, ids in by_type.items():
        for start in range(0, len(ids), _CHUNK):
            rids += uow.conn.execute(select(r.rid).where(
                r.res_type == res_type, r.res_id.in_(ids[start:start + _CHUNK]), r.deleted.is_(False))).scalars()
    return uow.current_by_rids(sorted(rids))


def too_many(count: int) -> FhirError:
    return FhirError(f"one match alone includes more than {count} resources; narrow _include/_revinclude "
                     "(e.g. name a target type) or page through the referencing resources with a search",
                     code="too-costly")

