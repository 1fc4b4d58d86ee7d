"""Parsed criteria compiled to one WHERE clause over `resources`, plus the ORDER BY of `_sort`.

A chain `subject:Patient.name=x` becomes `rid IN (SELECT rid FROM idx_reference WHERE param =
'subject' AND target_type = 'Patient' AND target_id IN (SELECT res_id FROM resources WHERE
res_type = 'Patient' AND <name test>))`, nested once per link; `_has` is the same join read
backwards (`res_id IN (SELECT target_id FROM idx_reference WHERE rid IN (...))`). docs/storage.md
shows the SQL of each shape.
"""
from __future__ import annotations

from typing import Callable, Sequence

from sqlalchemy import and_, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ihs.fhir.definitions import compartments
from ihs.fhir.errors import FhirError
from ihs.store.schema import INDEX_TABLES, contained_resources, idx_reference, resources
from ihs.store.search.conditions import (leaf_condition, leaf_rows, negated, probe, rows_test, selectivity,
                                         type_filter)
from ihs.store.search.query import Chain, Has, Leaf, Node, ParsedQuery
from ihs.store.search.ranges import Window, window_rows, windows
from ihs.store.search.special import Special

ALL_TYPES = None  # a `types` value meaning: no restriction on the resource type


def live(r) -> ColumnElement:
    return r.c.deleted.is_(False)


# a test matching fewer index rows than this drives the search (evaluated once into a set); when
# none does, candidates are walked in index order and every test is probed per candidate
DRIVER_ROWS = 2000
SMALL = 500  # a counted test this small drives without counting the others
Estimator = Callable[[object, object], int]  # (leaf or window, types) -> its index rows, counted up to DRIVER_ROWS


def rank(node) -> int:
    """How selective a criterion is likely to be (lower: fewer matches); see conditions.selectivity."""
    if isinstance(node, Window):
        return 5  # a narrow range of the low index (ranges.py)
    if isinstance(node, Leaf):
        return 7 if node.param.code == "_lastUpdated" else selectivity(node)
    if isinstance(node, Chain):
        return 1 + min(rank(inner) for _, inner in node.targets)
    if isinstance(node, Special):
        return node.rank
    return 1 + rank(node.inner)


def _innermost(node, types: Sequence[str] | None) -> tuple:
    """The test at the end of a chain or _has (with its resource type), whose size hints at theirs."""
    if isinstance(node, (Leaf, Window)):
        return node, types
    if isinstance(node, Chain):
        return _innermost(node.targets[0][1], [node.targets[0][0]]) if len(node.targets) == 1 else (None, None)
    if isinstance(node, Special):
        return None, None
    return _innermost(node.inner, [node.source])


def choose_driver(nodes: list[Node], types: Sequence[str] | None,
                  estimate: Estimator | None) -> tuple[int | None, int | None]:
    """(index of the driving criterion or None, how many rows it matches if it was counted).

    Criteria are considered from the likeliest to be selective (`rank` below 6). The index rows of
    each test -- for a chain or _has, of the test at its end -- are counted up to DRIVER_ROWS; one
    under SMALL drives at once, else the smallest under DRIVER_ROWS does, else none (candidates are
    then walked in index order). `_id` is answered from the resources table itself.
    """
    ids = [n for n in nodes if isinstance(n, Leaf) and n.param.code == "_id" and n.modifier is None]
    if ids:
        return None, min(len(n.values) for n in ids)
    if len(nodes) == 1:
        return (0 if rank(nodes[0]) < 6 else None), None  # nothing to choose between
    counted: list[tuple[int, int, bool]] = []
    for grade, i in sorted((rank(n), i) for i, n in enumerate(nodes)):
        if grade >= 6:
            break
        node = nodes[i]
        if estimate is None:
            return i, None
        leaf, leaf_types = _innermost(node, types)
        if leaf is None or leaf.param.code == "_id":
            if isinstance(node, (Leaf, Window)):
                continue
            return i, None
        if leaf.param.code == "_lastUpdated":
            continue
        if isinstance(leaf, Leaf) and negated(leaf):
            continue
        found, exact = estimate(leaf, leaf_types), leaf is node
        if found < SMALL:
            return i, found if exact else None
        counted.append((found, i, exact))
    small = [c for c in counted if c[0] < DRIVER_ROWS]
    if small:
        found, index, exact = min(small)
        return index, found if exact else None
    return None, None


def conditions(nodes: list[Node], r, types: Sequence[str] | None,
               estimate: Estimator | None = None) -> tuple[list[ColumnElement], bool]:
    """The conditions of AND-ed criteria -- the driver as `rid IN (...)`, the others probed per
    candidate -- and whether some test (or `_id`) drives."""
    driving, probes, driven = split_conditions(nodes, r, types, estimate)
    return driving + probes, driven


def split_conditions(nodes: list[Node], r, types: Sequence[str] | None,
                     estimate: Estimator | None = None) -> tuple[list[ColumnElement], list[ColumnElement], bool]:
    """(the driving test, if one drives, as a list; the probes; whether some test or `_id` drives)."""
    if not nodes:
        return [], [], False
    nodes = windows(nodes)
    driver, rows = choose_driver(nodes, types, estimate)
    driving = [node_condition(n, r, types, driving=True) for i, n in enumerate(nodes) if i == driver]
    probes = [node_condition(n, r, types, driving=False) for i, n in enumerate(nodes) if i != driver]
    return driving, probes, driver is not None or rows is not None


def node_condition(node: Node, r, types: Sequence[str] | None, driving: bool = True) -> ColumnElement:
    """The condition on resources alias `r` (of `types`) for one criterion tree."""
    if isinstance(node, Window):
        return rows_test(r.c.rid, window_rows(node, types if driving else None, driving), negated=False,
                         driving=driving)
    if isinstance(node, Leaf):
        return leaf_condition(node, r, types, driving)
    if isinstance(node, Chain):
        return _chain_condition(node, r, types, driving)
    if isinstance(node, Special):
        return node.condition(r, types, driving)
    return _has_condition(node, r, types, driving)


def _index_backed(node) -> bool:
    """A test answered from index rows alone, which exist only for live resources."""
    return isinstance(node, Window) or (isinstance(node, Leaf) and node.param.code not in ("_id", "_lastUpdated"))


def _rows_of(node, types: Sequence[str] | None):
    """(SELECT rid of the rows matching an index-backed test, negated)."""
    return (window_rows(node, types), False) if isinstance(node, Window) else leaf_rows(node, types)


def _chain_condition(chain: Chain, r, types: Sequence[str] | None, driving: bool) -> ColumnElement:
    ref = idx_reference.alias()
    per_target = []
    for target, inner in chain.targets:
        if isinstance(inner, Leaf) and inner.param.code == "_id" and inner.modifier is None:
            per_target.append(and_(ref.c.target_type == target, ref.c.target_id.in_(_ids(inner))))
            continue
        r2 = resources.alias()
        # index rows exist only for live resources: an index-backed test needs no deleted check
        targets = select(r2.c.res_id).where(r2.c.res_type == target)
        if not _index_backed(inner):
            targets = targets.where(live(r2))
        if driving:  # the matching targets, once, then the references to them
            matching = targets.where(*conditions([inner], r2, [target])[0])
            per_target.append(and_(ref.c.target_type == target, ref.c.target_id.in_(matching)))
        else:  # per candidate: does what it refers to match?
            matching = targets.where(r2.c.res_id == ref.c.target_id, node_condition(inner, r2, [target], False))
            per_target.append(and_(ref.c.target_type == target, probe(matching)))
    # or a reference "#id" to a resource contained in the candidate, unless the candidates are contained
    # resources themselves (a reference between two resources of one container is not followed)
    local = "container_rid" not in r.c
    if local and not driving:
        per_target += [and_(ref.c.target_type.is_(None), _local_probe(ref, target, inner))
                       for target, inner in chain.targets]
    rows = select(ref.c.rid).where(type_filter(ref.c.res_type, types), ref.c.param == chain.param.code,
                                   or_(*per_target) if len(per_target) > 1 else per_target[0])
    if local and driving:  # a branch of its own, not an OR, so each keeps its index plan
        rows = rows.union_all(*(_local_rows(chain.param.code, types, target, inner)
                                for target, inner in chain.targets))
    return rows_test(r.c.rid, rows, negated=False, driving=driving)


# A local reference "#id" is indexed with its url only (no target type): it names the resource of that
# id contained in the referring resource, whose own index rows carry its negative rid (contained.py).

def _local_rows(param: str, types: Sequence[str] | None, target: str, inner):
    """SELECT rid of the resources whose `param` is a local reference to a contained `target` matching `inner`."""
    ref, c = idx_reference.alias(), contained_resources.alias()
    return (select(ref.c.rid).join(c, c.c.container_rid == ref.c.rid)
            .where(type_filter(ref.c.res_type, types), ref.c.param == param, ref.c.target_type.is_(None),
                   ref.c.url == literal_column("'#'") + c.c.res_id, c.c.res_type == target,
                   *conditions([inner], c, [target])[0]))


def _local_probe(ref, target: str, inner) -> ColumnElement:
    """Whether the reference row `ref` is local and names a contained `target` matching `inner`."""
    c = contained_resources.alias()
    return probe(select(c.c.rid).where(c.c.container_rid == ref.c.rid, c.c.res_type == target,
                                       ref.c.url == literal_column("'#'") + c.c.res_id,
                                       node_condition(inner, c, [target], False)))


def _ids(leaf: Leaf) -> list[str]:
    return sorted({token.code for token in leaf.values if token.code})


def _has_condition(has: Has, r, types: Sequence[str] | None, driving: bool) -> ColumnElement:
    ref = idx_reference.alias()
    rows = select(ref.c.target_id).where(ref.c.res_type == has.source, ref.c.param == has.param.code)
    drive = driving and types is not None and len(types) == 1
    if _index_backed(has.inner):
        # the source's own index rows: no need to visit the source resources
        source_rows, negated = _rows_of(has.inner, [has.source] if drive else None)
        matches = rows_test(ref.c.rid, source_rows, negated=negated, driving=drive)
    else:
        r2 = resources.alias()
        sources = select(r2.c.rid).where(r2.c.res_type == has.source, live(r2))
        if drive:
            matches = ref.c.rid.in_(sources.where(*conditions([has.inner], r2, [has.source])[0]))
        else:
            matches = probe(sources.where(r2.c.rid == ref.c.rid,
                                          node_condition(has.inner, r2, [has.source], False)))
    if drive:  # the matching sources, once, then what they refer to
        return r.c.res_id.in_(rows.where(ref.c.target_type == types[0], matches))
    # per candidate: is it referred to by a source that matches?
    return probe(rows.where(ref.c.target_id == r.c.res_id, ref.c.target_type == r.c.res_type, matches))


def compartment_condition(r, compartment: str, compartment_id: str, types: Sequence[str]) -> ColumnElement:
    """Membership of `compartment`/`compartment_id` (Patient/123) by the CompartmentDefinition's parameters."""
    definition = compartments().get(compartment)
    if definition is None:
        raise FhirError(f"'{compartment}' is not a compartment (use {', '.join(sorted(compartments()))})",
                        404, code="not-found")
    per_type = []
    for res_type in types:
        codes = [c for c in definition.get(res_type, ()) if c != "{def}"]
        tests = []
        if codes:
            ref = idx_reference.alias()
            rows = select(ref.c.rid).where(
                ref.c.res_type == res_type, ref.c.param.in_(codes) if len(codes) > 1 else ref.c.param == codes[0],
                ref.c.target_type == compartment, ref.c.target_id == compartment_id)
            tests.append(r.c.rid.in_(rows))
        if res_type == compartment:
            tests.append(r.c.res_id == compartment_id)  # the focal resource is in its own compartment
        if tests:
            per_type.append(and_(r.c.res_type == res_type, or_(*tests)))
    if not per_type:
        raise FhirError(f"{', '.join(types)} cannot be in a {compartment} compartment", code="not-supported")
    return or_(*per_type)


def where_clause(parsed: ParsedQuery, r, *, all_types: bool = False,
                 estimate: Estimator | None = None) -> tuple[ColumnElement, bool]:
    """The WHERE of a search: live resources of the searched types matching every criterion; and
    whether a selective test drives it (when False, candidates are walked in index order)."""
    where, probes, driven = staged_where(parsed, r, all_types=all_types, estimate=estimate)
    return and_(where, *probes), driven


def staged_where(parsed: ParsedQuery, r, *, all_types: bool = False,
                 estimate: Estimator | None = None) -> tuple[ColumnElement, list[ColumnElement], bool]:
    """`where_clause` in two parts when a test drives: (the WHERE of the driven candidates, the probes
    every match must also pass, whether a selective test drives); no probes are left out otherwise."""
    types = parsed.types
    if _shared_criteria(parsed):
        first = parsed.criteria[types[0]]
        scope = ALL_TYPES if all_types else types
        driving, probes, driven = split_conditions([c.node for c in first], r, scope, estimate)
        where = and_(type_filter(r.c.res_type, scope), live(r), *driving)
        return (where, probes, driven) if driving else (and_(where, *probes), [], driven)
    per_type = [and_(r.c.res_type == t, *conditions([c.node for c in parsed.criteria[t]], r, [t])[0])
                for t in types]
    return and_(live(r), or_(*per_type)), [], False


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
    c = INDEX_TABLES[param.type].c
    if param.type == "date":
        column = c.high if descending else c.low
    elif param.type == "quantity":
        column = func.coalesce(c.canonical_value, c.value)
    else:
        column = c[_SORT_COLUMNS[param.type]]
    aggregate = func.max(column) if descending else func.min(column)
    return select(aggregate).where(c.rid == r.c.rid, c.param == param.code).scalar_subquery()


def order_by(sort: list[tuple], r) -> list:
    """ORDER BY terms for [(param, descending)], missing values last, then rid for a stable order.

    Without _sort the order is _lastUpdated then rid: the resources_type_updated index yields it,
    so a search with no selective test stops scanning as soon as a page is full.
    """
    if not sort:
        return [r.c.last_updated, r.c.rid]
    terms = []
    for param, descending in sort:
        key = sort_key(param, r, descending)
        terms.append(key.desc().nulls_last() if descending else key.asc().nulls_last())
    terms.append(r.c.rid)
    return terms
