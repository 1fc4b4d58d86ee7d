"""_include and _revinclude: the resources a page of matches refers to, or is referred to by.

Each directive is one query over idx_reference for the whole page (never one per match);
`:iterate` directives run again on what the previous round added until nothing new appears.
Nothing is cut short: when a page's includes exceed `MAX_INCLUDED`, `Overflow` tells the caller
to serve fewer matches on this page (the next link carries on from there). With the access
policy's `restriction`, what the caller may not see is never included, nor followed by `:iterate`.
"""
from __future__ import annotations

import os

from sqlalchemy import and_, select

from ihs.fhir.errors import FhirError
from ihs.store.schema import idx_reference, resources
from ihs.store.search import prepared, visibility
from ihs.store.search.query import Include
from ihs.store.store import StoredResource, UnitOfWork

MAX_INCLUDED = int(os.environ.get("IHS_SEARCH_MAX_INCLUDED", 5000))
_CHUNK = 500


class Overflow(Exception):
    """The includes of this page exceed MAX_INCLUDED."""


def resolve(uow: UnitOfWork, directives: list[Include], matches: list[StoredResource], *,
            limit: int | None = None, restriction: visibility.RestrictionOf | None = None) -> list[StoredResource]:
    """The resources `directives` add to `matches`, without duplicates, in the order found; only
    those `restriction` shows, when there is one."""
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
            for resource in _follow(uow, directive, sources, restriction):
                key = (resource.type, resource.id)
                if key not in seen:
                    seen.add(key)
                    found.append(resource)
            if len(included) + len(found) > limit:
                raise Overflow()
        included.extend(found)
        sources, first = found, False
    return included


def _follow(uow: UnitOfWork, directive: Include, sources: list[StoredResource],
            restriction: visibility.RestrictionOf | None = None) -> list[StoredResource]:
    if directive.source is not None and not directive.reverse:
        sources = [s for s in sources if s.type == directive.source]
    if not sources:
        return []
    found = _reverse(uow, directive, sources) if directive.reverse else _forward(uow, directive, sources)
    if restriction is None or not found:
        return found
    by_type: dict[str, list[int]] = {}
    for resource in found:
        by_type.setdefault(resource.type, []).append(resource.rid)
    shown = visibility.visible_rids(uow, restriction, by_type)
    return [resource for resource in found if resource.rid in shown]


def _forward(uow: UnitOfWork, directive: Include, sources: list[StoredResource]) -> list[StoredResource]:
    i, target = idx_reference.c, resources.alias("target")

    def build(rids):
        referred = select(target.c.rid).join_from(
            idx_reference, target, and_(target.c.res_type == i.target_type, target.c.res_id == i.target_id)
        ).where(i.rid.in_(rids), target.c.deleted.is_(False))
        if directive.param:
            referred = referred.where(i.param == directive.param)
        if directive.target:
            referred = referred.where(i.target_type == directive.target)
        return select(*prepared.resource_columns(uow, resources)).where(resources.c.rid.in_(referred))

    found: dict[int, StoredResource] = {}
    for start in range(0, len(sources), _CHUNK):
        rids = [s.rid for s in sources[start:start + _CHUNK]]
        for resource in prepared.select_resources(uow, ("include", directive.param, directive.target), rids, build):
            found[resource.rid] = resource
    return [found[rid] for rid in sorted(found)]


def _reverse(uow: UnitOfWork, directive: Include, targets: list[StoredResource]) -> list[StoredResource]:
    i = idx_reference.c
    by_type: dict[str, list[str]] = {}
    for t in targets:
        if directive.target is None or t.type == directive.target:
            by_type.setdefault(t.type, []).append(t.id)
    found: dict[int, StoredResource] = {}
    for target_type, ids in by_type.items():
        def build(chunk):
            referring = select(i.rid).where(i.target_id.in_(chunk), i.target_type == target_type)
            if directive.source:
                referring = referring.where(i.res_type == directive.source)
            if directive.param:
                referring = referring.where(i.param == directive.param)
            return select(*prepared.resource_columns(uow, resources)).where(resources.c.rid.in_(referring))

        key = ("revinclude", target_type, directive.source, directive.param)
        for start in range(0, len(ids), _CHUNK):
            for resource in prepared.select_resources(uow, key, ids[start:start + _CHUNK], build):
                found[resource.rid] = resource
    return [found[rid] for rid in sorted(found)]


def too_many(count: int) -> FhirError:
    return FhirError(f"one match alone includes more than {count} resources; narrow _include/_revinclude "
                     "(e.g. name a target type) or page through the referencing resources with a search",
                     code="too-costly")

