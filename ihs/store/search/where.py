"""Parsed criteria compiled to one WHERE clause over `resources`, plus the ORDER BY of `_sort`.

A chain `subject:Patient.name=x` becomes `rid IN (SELECT rid FROM idx_reference WHERE param =
'subject' AND target_type = 'Patient' AND target_id IN (SELECT res_id FROM resources WHERE
res_type = 'Patient' AND <name test>))`, nested once per link; `_has` is the same join read
backwards (`res_id IN (SELECT target_id FROM idx_reference WHERE rid IN (...))`). docs/storage.md
shows the SQL of each shape.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from ihs.fhir.definitions import compartments
from ihs.fhir.errors import FhirError
from ihs.store.schema import INDEX_TABLES, idx_reference, resources
from ihs.store.search.conditions import leaf_condition, type_filter
from ihs.store.search.query import Chain, Has, Leaf, Node, ParsedQuery

ALL_TYPES = None  # a `types` value meaning: no restriction on the resource type


def live(r) -> ColumnElement:
    return r.c.deleted.is_(False)


def node_condition(node: Node, r, types: Sequence[str] | None) -> ColumnElement:
    """The condition on resources alias `r` (of `types`) for one criterion tree."""
    if isinstance(node, Leaf):
        return leaf_condition(node, r, types)
    if isinstance(node, Chain):
        return _chain_condition(node, r, types)
    return _has_condition(node, r, types)


def _chain_condition(chain: Chain, r, types: Sequence[str] | None) -> ColumnElement:
    ref = idx_reference.alias()
    per_target = []
    for target, inner in chain.targets:
        target_ids = _target_ids(target, inner)
        per_target.append(and_(ref.c.target_type == target, ref.c.target_id.in_(target_ids)))
    rows = select(ref.c.rid).where(type_filter(ref.c.res_type, types), ref.c.param == chain.param.code,
                                   or_(*per_target) if len(per_target) > 1 else per_target[0])
    return r.c.rid.in_(rows)


def _target_ids(target: str, inner: Node):
    """The ids of live `target` resources matching `inner` (a list when `inner` is an `_id` test)."""
    if isinstance(inner, Leaf) and inner.param.code == "_id" and inner.modifier is None:
        return sorted({token.code for token in inner.values if token.code})
    r2 = resources.alias()
    return select(r2.c.res_id).where(r2.c.res_type == target, live(r2), node_condition(inner, r2, [target]))


def _has_condition(has: Has, r, types: Sequence[str] | None) -> ColumnElement:
    ref = idx_reference.alias()
    r2 = resources.alias()
    sources = select(r2.c.rid).where(r2.c.res_type == has.source, live(r2),
                                     node_condition(has.inner, r2, [has.source]))
    if types is not None and len(types) == 1:
        targets = select(ref.c.target_id).where(ref.c.res_type == has.source, ref.c.param == has.param.code,
                                                ref.c.target_type == types[0], ref.c.rid.in_(sources))
        return r.c.res_id.in_(targets)
    targets = select(ref.c.target_type, ref.c.target_id).where(
        ref.c.res_type == has.source, ref.c.param == has.param.code, ref.c.rid.in_(sources))
    return tuple_(r.c.res_type, r.c.res_id).in_(targets)


def compartment_condition(r, compartment: str, compartment_id: str, types: Sequence[str]) -> ColumnElement:
    """Membership of `compartment`/`compartment_id` (Patient/123) by the CompartmentDefinition's parameters."""
    definition = compartments().get(compartment)
    if definition is None:
        raise FhirError(f"'{compartment}' is not a compartment (use {', '.join(sorted(compartments()))})",
                        404, code="not-found")
    per_type = []
    for res_type in types:
        codes = [c for c in definition.get(res_type, ()) if c != "{def}"]
        conditions = []
        if codes:
            ref = idx_reference.alias()
            rows = select(ref.c.rid).where(
                ref.c.res_type == res_type, ref.c.param.in_(codes) if len(codes) > 1 else ref.c.param == codes[0],
                ref.c.target_type == compartment, ref.c.target_id == compartment_id)
            conditions.append(r.c.rid.in_(rows))
        if res_type == compartment:
            conditions.append(r.c.res_id == compartment_id)  # the focal resource is in its own compartment
        if conditions:
            per_type.append(and_(r.c.res_type == res_type, or_(*conditions)))
    if not per_type:
        raise FhirError(f"{', '.join(types)} cannot be in a {compartment} compartment", code="not-supported")
    return or_(*per_type)


def where_clause(parsed: ParsedQuery, r, *, all_types: bool = False) -> ColumnElement:
    """The WHERE of a search: live resources of the searched types matching every criterion."""
    types = parsed.types
    if _shared_criteria(parsed):
        first = parsed.criteria[types[0]]
        scope = ALL_TYPES if all_types else types
        conditions = [type_filter(r.c.res_type, scope), live(r)]
        conditions += [node_condition(c.node, r, scope) for c in first]
        return and_(*conditions)
    per_type = [and_(r.c.res_type == t, *[node_condition(c.node, r, [t]) for c in parsed.criteria[t]])
                for t in types]
    return and_(live(r), or_(*per_type))


def _shared_criteria(parsed: ParsedQuery) -> bool:
    """True when every criterion means the same for every searched type (_id, _tag, ... or one type)."""
    if len(parsed.types) == 1:
        return True
    lists = [parsed.criteria[t] for t in parsed.types]
    for criteria in zip(*lists):
        nodes = [c.node for c in criteria]
        if not all(isinstance(n, Leaf) for n in nodes) or len({n.param.url for n in nodes}) != 1:
            return False
    return True


# ---------------------------------------------------------------------------- _sort

_SORT_COLUMNS = {"string": "value", "token": "code", "reference": "url", "number": "value", "uri": "uri"}


def sort_key(param, r, descending: bool):
    """An expression ordering resources by `param`: its least value ascending, its greatest descending."""
    if param.code == "_id":
        return r.c.res_id
    if param.code == "_lastUpdated":
        return r.c.last_updated
    table = INDEX_TABLES[param.type].alias()
    c = table.c
    if param.type == "date":
        column = c.high if descending else c.low
    elif param.type == "quantity":
        column = func.coalesce(c.canonical_value, c.value)
    else:
        column = c[_SORT_COLUMNS[param.type]]
    aggregate = func.max(column) if descending else func.min(column)
    return select(aggregate).where(c.rid == r.c.rid, c.param == param.code).scalar_subquery()


def order_by(sort: list[tuple], r) -> list:
    """ORDER BY terms for [(param, descending)], missing values last, then rid for a stable order."""
    terms = []
    for param, descending in sort:
        key = sort_key(param, r, descending)
        terms.append(key.desc().nulls_last() if descending else key.asc().nulls_last())
    terms.append(r.c.rid)
    return terms
