"""Reference `:above` and `:below` over circular references (R4 search, "Searching Hierarchies").

Some resources refer to others of their own type and so form a hierarchy: Location.partOf,
Organization.partOf, Specimen.parent, Task.partOf. `partof:below=Location/1` matches a reference to
Location/1 or to any location below it (part of it, at any depth); `:above` a reference to
Location/1 or to any location it is part of. The hierarchy is walked in SQL by a recursive common
table expression over idx_reference, with UNION so that a circular hierarchy (A part of B part of A)
ends. Any reference parameter whose target type has such a hierarchy takes the modifiers, e.g.
`Encounter?location:below=Location/ward-block`.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Text, and_, cast, literal, select

from ihs.fhir.searchparams import SearchParam, registry
from ihs.store.schema import idx_reference, resources
from ihs.store.search import values as v

# the parameter forming the hierarchy when a type has several references to itself
_PREFERRED = ("partof", "part-of", "parent")


@dataclass(frozen=True)
class HierarchyRef:
    """One value of `param:above` / `param:below`: the resource the walk starts from."""

    target_type: str
    target_id: str
    link: str  # the code of the target type's parameter forming the hierarchy (e.g. partof)


def hierarchy_param(res_type: str) -> str | None:
    """The code of the reference from `res_type` to its parent of the same type, if it has one."""
    own = sorted(p.code for p in registry().params_for(res_type).values()
                 if p.type == "reference" and p.indexed and p.targets == (res_type,))
    if len(own) == 1:
        return own[0]
    preferred = [code for code in _PREFERRED if code in own]
    return preferred[0] if preferred else None


def parse(param: SearchParam, text: str, base: str | None, modifier: str) -> HierarchyRef:
    """The starting point of a hierarchical search, or v.BadValue saying what to write instead."""
    ref = v.parse_reference(text, base)
    if ref.url is not None:
        raise v.BadValue(f"'{text}' is outside this server; :{modifier} walks the hierarchy of local resources")
    target_type = ref.type or (param.targets[0] if len(param.targets) == 1 else None)
    if target_type is None:
        raise v.BadValue(f"'{text}' names no resource type; write Type/id, e.g. Location/{ref.id}")
    if param.targets and target_type not in param.targets:
        raise v.BadValue(f"'{param.code}' cannot refer to {target_type}")
    link = hierarchy_param(target_type)
    if link is None:
        raise v.BadValue(f"{target_type} resources form no hierarchy (no reference of theirs points to another "
                         f"{target_type}); :{modifier} needs one, as Location.partOf is")
    return HierarchyRef(target_type, ref.id, link)


def _ids(start: HierarchyRef, modifier: str):
    """SELECT of the ids in the hierarchy below (or above) `start`, itself included."""
    i, r = idx_reference.alias(), resources.alias()
    # both terms text: PostgreSQL wants one type for the recursive column (res_id is varchar, target_id text)
    seed = select(cast(literal(start.target_id), Text).label("id")).cte(recursive=True)
    if modifier == "below":  # the resources whose link points to one already found
        step = (select(cast(r.c.res_id, Text)).join_from(i, r, r.c.rid == i.c.rid)
                .where(i.c.res_type == start.target_type, i.c.param == start.link,
                       i.c.target_type == start.target_type, i.c.target_id == seed.c.id))
    else:  # what the ones already found link to
        step = (select(i.c.target_id).join_from(i, r, r.c.rid == i.c.rid)
                .where(r.c.res_type == start.target_type, r.c.res_id == seed.c.id, i.c.param == start.link,
                       i.c.target_type == start.target_type))
    tree = seed.union(step)
    return select(tree.c.id)


def reference_match(c, start: HierarchyRef, modifier: str) -> ColumnElement:
    """The index row `c` refers to `start` or to a resource below (above) it."""
    return and_(c.target_type == start.target_type, c.target_id.in_(_ids(start, modifier)))
