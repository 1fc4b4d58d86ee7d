"""_contained and _containedType: searching the resources inside other resources (R4 search, "Contained Resources").

Each contained resource has a row in `contained_resources` under a negative rid, and index rows in the
idx_* tables like any resource (written with its container, ihs/store/store.py). A search with
`_contained=true` runs the same WHERE clause over `contained_resources` instead of `resources`, and
`_contained=both` over both (UNION ALL). `_containedType=container` (the default) answers with the
containers of the matching contained resources; `contained` answers with the contained resources
themselves, whose fullUrl is their container's with `#id` appended.
"""
from __future__ import annotations

import orjson
from sqlalchemy import Text, and_, cast, func, null, select, union_all

from ihs.store.schema import contained_resources, resources
from ihs.store.store import StoredResource, UnitOfWork


def searched(contained: str):
    """The rows a search with `_contained=contained` tests: resources, contained resources, or both."""
    if contained == "false":
        return resources
    if contained == "true":
        return contained_resources
    r, c = resources.c, contained_resources.c
    return union_all(
        select(r.rid, r.res_type, r.res_id, r.last_updated, r.deleted, null().label("container_rid")),
        select(c.rid, c.res_type, c.res_id, c.last_updated, c.deleted, c.container_rid),
    ).subquery("searched")


def containers(where, rows):
    """The condition on `resources` of being, or containing, one of the `rows` matching `where`."""
    owner = func.coalesce(rows.c.container_rid, rows.c.rid) if rows is not contained_resources \
        else rows.c.container_rid
    return and_(resources.c.deleted.is_(False), resources.c.rid.in_(select(owner).where(where)))


def load(uow: UnitOfWork, rids: list[int]) -> list[StoredResource]:
    """The resources of `rids` in that order: current versions, and contained resources (negative rids)."""
    inner_rids = [rid for rid in rids if rid < 0]
    if not inner_rids:
        return uow.current_by_rids(rids)
    found = {s.rid: s for s in uow.current_by_rids([rid for rid in rids if rid > 0])}
    c, r = contained_resources.c, resources.c
    content = r.content if uow.store.dialect == "sqlite" else cast(r.content, Text)
    rows = uow.conn.execute(
        select(c.rid, c.res_type, c.res_id, r.res_type, r.res_id, r.version, r.last_updated, content)
        .join_from(contained_resources, resources, r.rid == c.container_rid).where(c.rid.in_(inner_rids))).all()
    for rid, inner_type, inner_id, outer_type, outer_id, version, last_updated, outer_content in rows:
        container = orjson.loads(uow.store.protection.open_text(outer_content))  # resident IDs sealed at rest
        for inner in container.get("contained", ()):
            if isinstance(inner, dict) and inner.get("resourceType") == inner_type and inner.get("id") == inner_id:
                found[rid] = StoredResource(rid, inner_type, inner_id, version, last_updated, False,
                                            orjson.dumps(inner).decode(), container=f"{outer_type}/{outer_id}")
                break
    return [found[rid] for rid in rids if rid in found]
