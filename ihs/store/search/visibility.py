"""The access policy's search restriction compiled into one SQL condition on `resources`.

A `Restriction` (ihs/auth/restriction.py, whose `visible()` is the reference for one resource)
says which resources a caller may see. `condition(uow, restriction, r, types)` turns it into a
condition on the resources alias `r` that searches, `_include`/`_revinclude` and history AND into
their statements, so matches, paging links and totals never count a hidden resource. A restriction
that shows everything adds nothing (None): a trusted system pays no cost.

The searched types are grouped by what the rules say about them; each group becomes
`res_type IN (group) AND <its rules>`, with every per-resource test an index probe by `rid`:

- a security label: `NOT EXISTS (idx_token WHERE rid = r.rid AND param = '_security' AND ...)`;
- a tag: `EXISTS (idx_token WHERE rid = r.rid AND param = '_tag' AND ...)`;
- the compartment of some patients: `EXISTS (idx_reference WHERE rid = r.rid AND target_type =
  'Patient' AND target_id IN (...) AND param IN (<the type's Patient compartment parameters>))`,
  or `res_id IN (...)` for the Patient itself;
- in no patient's compartment: the same probe without the patients, negated.

When the rules for a one-type search are a plain union of patients' compartments and tags (a
patient, a proxy, a CDC officer; for staff, besides the resources in no patient's record) and that
union holds few rows (counted up to `SEMI_JOIN_ROWS`), it becomes one semi-join instead: `rid IN (SELECT rid FROM idx_reference WHERE res_type = ? AND
param IN (...) AND target_type = 'Patient' AND target_id IN (...))`, read from the (res_type, param,
target_id, target_type) index, so a patient's search costs the unrestricted search plus reading
their own record's index rows, whatever the search's own criteria match. Long patient lists travel
as one parameter (a PostgreSQL array, a JSON array read by SQLite's json_each), never as
thousands of bound values.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Union

from sqlalchemy import String, and_, any_, bindparam, exists, false, func, literal, not_, or_, select, true, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from ihs.fhir.definitions import compartments
from ihs.fhir.errors import FhirError
from ihs.store.schema import idx_reference, idx_token, resources
from ihs.store.search.slots import tag
from ihs.store.store import UnitOfWork

if TYPE_CHECKING:
    from ihs.auth.restriction import Restriction

# what the search path receives: one restriction for every type, or the caller's restriction per type
RestrictionOf = Union["Restriction", Callable[[str | None], "Restriction"]]

# a list longer than this is bound as one array parameter instead of one parameter per value
LONG_LIST = 64
# a union of at most this many index rows is a semi-join; a larger one is probed per candidate
SEMI_JOIN_ROWS = 2000
# a compiled condition is reused for this long: a caller's searches in a row cost one compilation,
# and the semi-join choices in it (a performance choice only) follow a growing record soon enough
CACHE_SECONDS = 30.0
CACHE_SIZE = 512


def restriction_for(restriction: RestrictionOf, res_type: str | None) -> "Restriction":
    """The restriction that applies to `res_type` (None: a search over several types)."""
    return restriction(res_type) if callable(restriction) else restriction


def shows_everything(restriction: "Restriction", types: Sequence[str] | None) -> bool:
    """True when the restriction hides nothing of `types` (None: any type): no condition is needed.

    That is `everything`, or types open to the caller (directory data) when no security label is
    excluded, in both cases without criteria.
    """
    if restriction.types is not None and (types is None or not set(types) <= restriction.types):
        return False
    if restriction.criteria and (types is None or restriction.criteria.keys() & set(types)):
        return False
    if restriction.everything:
        return True
    return types is not None and not restriction.excluded_labels and set(types) <= restriction.open_types


def condition(uow: UnitOfWork, restriction: "Restriction", r, types: Sequence[str] | None, *,
              drive: bool = False) -> ColumnElement | None:
    """The condition on resources alias `r` (of `types`; None: any type) that keeps only visible resources.

    None when the restriction hides nothing. `drive` lets the restriction of a one-type search be a
    semi-join when it enumerates few rows (False: every test is probed per candidate).
    """
    if shows_everything(restriction, types):
        return None
    if restriction.nothing:
        return false()
    return _cached(uow, restriction, r, types, drive)[0]


def _cached(uow: UnitOfWork, restriction: "Restriction", r, types: Sequence[str] | None,
            drive: bool) -> tuple[ColumnElement, tuple[bool, ...]]:
    """(the condition, the semi-join choices made building it), built once per CACHE_SECONDS."""
    key = (id(uow.store), r, tuple(types) if types is not None else None, drive, _restriction_key(restriction))
    cached = _compiled.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    choices: list[bool] = []

    def few(rows) -> bool:
        choices.append(_few(uow, rows))
        return choices[-1]

    compiled = (_condition(uow, restriction, r, types, drive, few), tuple(choices))
    with _compiled_lock:  # requests run in a thread pool
        _compiled[key] = (time.monotonic() + CACHE_SECONDS, compiled)
        _compiled.move_to_end(key)
        while len(_compiled) > CACHE_SIZE:
            _compiled.popitem(last=False)
    return compiled


@dataclass(frozen=True)
class Traced:
    """The restriction of a one-type search as part of a cached statement (ihs/store/search/shapes.py):
    `key` is everything that decides its SQL (the rules, how many values of each kind, the semi-join
    choices), `values` its values in slot order, `build(first)` the condition on `resources` with
    those values tagged from slot `first` on."""

    key: tuple
    values: list
    build: Callable[[int], ColumnElement]


def traced(uow: UnitOfWork, restriction: "Restriction", res_type: str) -> Traced | None:
    """The restriction, hiding something, of a search of `res_type` alone as a `Traced`; None for one that
    shows nothing of the type or whose patient lists travel as one array parameter (built each time)."""
    if restriction.nothing or _signature(restriction, res_type) is None:
        return None
    merged = _grants(restriction, res_type)
    if any(len(patients) > LONG_LIST for _, patients in merged) or \
            len(restriction.within_patients or ()) > LONG_LIST:
        return None
    # one grant per set of excluded labels, as the rules see them: no patient id is listed twice
    restriction = replace(restriction.for_type(res_type), grants=tuple(
        replace(restriction.grants[0], patients=patients, types=None, excluded_labels=labels)
        for labels, patients in merged))
    choices = _cached(uow, restriction, resources, [res_type], True)[1]
    values: list[str] = []
    _relabelled(restriction, values.append)
    key = ("restricted", res_type, choices, _shape_of(restriction, res_type))

    def build(first: int) -> ColumnElement:
        position = iter(range(first, first + len(values)))
        tagged = _relabelled(restriction, lambda value: tag(value, (next(position), ())))
        replay = iter(choices)
        return _Rules(uow, tagged, [res_type], resources, lambda rows: next(replay)).condition(drive=True)

    return Traced(key, values, build)


def _relabelled(restriction: "Restriction", each: Callable[[str], object]) -> "Restriction":
    """The restriction with every patient id and coding passed through `each`, in one fixed order."""
    def ids(patients):
        return None if patients is None else frozenset(each(p) for p in sorted(patients))

    def codings(pairs):
        return frozenset((system if system is None else each(system), code if code is None else each(code))
                         for system, code in sorted(pairs, key=lambda c: (c[0] or "", c[1] or "")))

    grants = tuple(replace(g, patients=ids(g.patients), excluded_labels=codings(g.excluded_labels))
                   for g in restriction.grants)
    return replace(restriction, grants=grants, tags=codings(restriction.tags),
                   excluded_labels=codings(restriction.excluded_labels),
                   within_patients=ids(restriction.within_patients))


def _shape_of(restriction: "Restriction", res_type: str) -> tuple:
    """What decides the SQL of the rules for `res_type` besides the values: which rules, how many values."""
    def codings(pairs):
        return tuple(sorted((system is None, code is None) for system, code in pairs))

    grants = tuple((codings(labels), len(patients)) for labels, patients in _grants(restriction, res_type))
    return (restriction.everything, restriction.types, restriction.open_types, restriction.unattached,
            tuple(sorted(restriction.criteria.items())), codings(restriction.tags),
            codings(restriction.excluded_labels), grants,
            None if restriction.within_patients is None else len(restriction.within_patients))


_compiled: OrderedDict = OrderedDict()
_compiled_lock = threading.Lock()


def _restriction_key(restriction: "Restriction") -> tuple:
    return (restriction.everything, restriction.types, restriction.open_types, restriction.tags,
            restriction.unattached, restriction.grants, restriction.excluded_labels,
            tuple(sorted(restriction.criteria.items())), restriction.within_patients)


def _condition(uow: UnitOfWork, restriction: "Restriction", r, types: Sequence[str] | None,
               drive: bool, few: Callable[[object], bool]) -> ColumnElement:
    single = types is not None and len(types) == 1  # the statement already names the type
    if types is None:
        types = [t for t in _all_types() if restriction.types is None or t in restriction.types]
    groups: dict[tuple, list[str]] = {}
    for res_type in types:
        key = _signature(restriction, res_type)
        if key is not None:
            groups.setdefault(key, []).append(res_type)
    if not groups:
        return false()
    parts = []
    for key, group in groups.items():
        rules = _Rules(uow, restriction, group, r, few)
        test = rules.condition(drive=drive and single)
        parts.append(test if single else and_(_in_list(r.c.res_type, group), test))
    return parts[0] if len(parts) == 1 else or_(*parts)


_VISIBLE = resources.alias("visible")
_CONTAINER = resources.alias("container")
_SHOWN = resources.alias("shown")


def visible_rids(uow: UnitOfWork, restriction: RestrictionOf, rids_by_type: dict[str, list[int]]) -> set[int]:
    """Which of these resources (rids of live resources, by type) the restriction shows."""
    shown: set[int] = set()
    r = _VISIBLE
    for res_type, rids in rids_by_type.items():
        test = condition(uow, restriction_for(restriction, res_type), r, [res_type])
        if test is None:
            shown.update(rids)
            continue
        for start in range(0, len(rids), 500):
            chunk = rids[start:start + 500]
            shown.update(uow.conn.execute(select(r.c.rid).where(r.c.rid.in_(chunk), test)).scalars())
    return shown


def container_condition(uow: UnitOfWork, restriction: RestrictionOf, rows) -> ColumnElement | None:
    """For a search answering contained resources themselves (`_containedType=contained`): the condition
    on those rows that their container (or, for a resource of `resources`, itself) is shown."""
    shown = _CONTAINER
    test = condition(uow, restriction_for(restriction, None), shown, None)
    if test is None:
        return None
    owner = func.coalesce(rows.c.container_rid, rows.c.rid)
    return _probe(select(shown.c.rid).where(shown.c.rid == owner, shown.c.deleted.is_(False), test))


def history_condition(uow: UnitOfWork, restriction: RestrictionOf, res_type: str | None) -> ColumnElement | None:
    """The condition on resource_history keeping the versions of resources the restriction shows now.

    Visibility is decided on the current version, whose index rows the rules read; a deleted
    resource has none, so its history is shown only where the restriction hides nothing.
    """
    from ihs.store.schema import resource_history

    rule = restriction_for(restriction, res_type)
    r = _SHOWN
    test = condition(uow, rule, r, [res_type] if res_type else None)
    if test is None:
        return None
    return _probe(select(r.c.rid).where(r.c.rid == resource_history.c.rid, r.c.deleted.is_(False), test))


# ---------------------------------------------------------------------------- the rules of one group

@cache
def _all_types() -> tuple[str, ...]:
    from ihs.fhir.searchparams import registry

    return tuple(registry().resource_types())


def _compartment_params(res_type: str) -> tuple[str, ...]:
    return tuple(p for p in compartments()["Patient"].get(res_type, ()) if p != "{def}")


def _grants(restriction: "Restriction", res_type: str) -> tuple[tuple[frozenset, frozenset], ...]:
    """(excluded labels, patients) of the grants covering `res_type`, merged by their labels."""
    by_labels: dict[frozenset, set[str]] = {}
    for grant in restriction.grants:
        if grant.types is None or res_type in grant.types:
            by_labels.setdefault(grant.excluded_labels, set()).update(grant.patients)
    return tuple(sorted(((labels, frozenset(patients)) for labels, patients in by_labels.items() if patients),
                        key=lambda item: sorted(item[0])))


def _signature(restriction: "Restriction", res_type: str) -> tuple | None:
    """What the rules say about `res_type`, as a key grouping the types they treat alike; None: nothing shown."""
    if restriction.types is not None and res_type not in restriction.types:
        return None
    criteria = restriction.criteria.get(res_type)
    if restriction.everything:
        return (res_type, criteria) if criteria else ("everything",)
    open_type = res_type in restriction.open_types
    in_compartments = res_type == "Patient" or bool(_compartment_params(res_type))
    within = None if restriction.within_patients is None or open_type else restriction.within_patients
    grants = () if open_type else _grants(restriction, res_type)
    if not open_type and not restriction.tags and not grants and not (restriction.unattached and res_type != "Patient"):
        return None
    if within is not None and not within:
        return None
    return (res_type if criteria or res_type == "Patient" else None, criteria, open_type, in_compartments,
            within, grants)


class _Rules:
    """The SQL of the rules for a group of types that the restriction treats alike."""

    def __init__(self, uow: UnitOfWork, restriction: "Restriction", types: list[str], r,
                 few: Callable[[object], bool]):
        self.uow, self.restriction, self.types, self.r = uow, restriction, types, r
        self.few = few  # whether a union of index rows is small enough for a semi-join (_few)
        self.first = types[0]
        self.is_patient = types == ["Patient"]

    def condition(self, *, drive: bool) -> ColumnElement:
        restriction, res_type = self.restriction, self.first
        tests = []
        criteria = restriction.criteria.get(res_type)
        if criteria:
            tests.append(self._criteria(criteria))
        if restriction.everything:
            return and_(*tests) if tests else true()
        if restriction.excluded_labels:
            tests.append(not_(self._labelled(restriction.excluded_labels)))
        open_type = res_type in restriction.open_types
        if restriction.within_patients is not None and not open_type:
            tests.append(self._in_compartment(restriction.within_patients, drive=drive))
            drive = False  # one driving set is enough
        if not open_type:
            tests.append(self._shown(drive=drive))
        return and_(*tests) if tests else true()

    # rule 6: open types, tags, resources in no compartment, and grants
    def _shown(self, *, drive: bool) -> ColumnElement:
        restriction, res_type = self.restriction, self.first
        unattached = restriction.unattached and not self.is_patient
        if unattached and not self._compartment_pairs():
            return true()  # resources of these types are in no patient's compartment
        grants = _grants(restriction, res_type)
        union = self._driving_union(grants) if drive else None
        if union is not None and self.few(union):
            if not unattached:
                return self.r.c.rid.in_(union)
            # evaluated once into a set: one probe per candidate is left, for "in no patient's record"
            return or_(self.r.c.rid.in_(union), not_(self._compartment_probe(None)))
        # cheapest probes first: a resource has a few reference rows but many token rows
        alternatives = []
        for labels, patients in grants:
            shown = self._in_compartment(patients)
            alternatives.append(and_(shown, not_(self._labelled(labels))) if labels else shown)
        if unattached:
            alternatives.append(not_(self._compartment_probe(None)))
        if restriction.tags:
            alternatives.append(self._tagged(restriction.tags))
        return or_(*alternatives) if alternatives else false()

    def _driving_union(self, grants) -> object | None:
        """SELECT rid of every resource of the (one) type the tags and grants show, or None if labels
        must be checked per grant (then the per-candidate form is as good)."""
        if any(labels for labels, _ in grants) or self.is_patient:
            return None
        selects = []
        if self.restriction.tags:
            t = idx_token.alias()
            selects.append(select(t.c.rid).where(t.c.res_type == self.first, t.c.param == "_tag",
                                                 _codings(t, self.restriction.tags)))
        patients = frozenset().union(*(p for _, p in grants)) if grants else frozenset()
        if patients:
            x = idx_reference.alias()
            params = _compartment_params(self.first)
            selects.append(select(x.c.rid).where(x.c.res_type == self.first, _in_list(x.c.param, params),
                                                 x.c.target_type == "Patient",
                                                 self._ids(x.c.target_id, patients)))
        if not selects:
            return None
        return selects[0] if len(selects) == 1 else selects[0].union(*selects[1:])

    # ---------------------------------------------------------------- the tests
    def _criteria(self, alternatives) -> ColumnElement:
        """Rule 4: one of the alternatives (each an AND of search parameters), compiled by the search engine."""
        from ihs.store.search.custom import ParamLookup
        from ihs.store.search.query import parse_criterion
        from ihs.store.search.where import node_condition

        lookup = ParamLookup(self.uow)
        compiled = []
        for criteria in alternatives:
            try:
                nodes = [parse_criterion(self.first, name, value, lookup) for name, value in criteria]
            except FhirError:
                continue  # a criterion this server cannot evaluate shows nothing
            compiled.append(and_(*(node_condition(n, self.r, [self.first], False) for n in nodes)))
        return or_(*compiled) if compiled else false()

    def _labelled(self, labels) -> ColumnElement:
        t = idx_token.alias()
        return _probe(select(t.c.rid).where(t.c.rid == self.r.c.rid, t.c.param == "_security", _codings(t, labels)))

    def _tagged(self, tags) -> ColumnElement:
        t = idx_token.alias()
        return _probe(select(t.c.rid).where(t.c.rid == self.r.c.rid, t.c.param == "_tag", _codings(t, tags)))

    def _in_compartment(self, patients: frozenset[str], *, drive: bool = False) -> ColumnElement:
        """In the Patient compartment of one of `patients`: the Patient itself, or a reference to one."""
        if not patients:
            return false()
        if self.is_patient:
            own = self._ids(self.r.c.res_id, patients)
            return or_(own, self._compartment_probe(patients)) if self._compartment_pairs() else own
        if drive:
            x = idx_reference.alias()
            rows = select(x.c.rid).where(x.c.res_type == self.first, _in_list(x.c.param, _compartment_params(self.first)),
                                         x.c.target_type == "Patient", self._ids(x.c.target_id, patients))
            if self.few(rows):
                return self.r.c.rid.in_(rows)
        return self._compartment_probe(patients)

    def _compartment_probe(self, patients: frozenset[str] | None) -> ColumnElement:
        """EXISTS a compartment reference of this candidate (to one of `patients`; None: to any patient)."""
        x = idx_reference.alias()
        rows = select(x.c.rid).where(x.c.rid == self.r.c.rid, x.c.target_type == "Patient", self._params(x))
        rows = rows.where(x.c.target_id.is_not(None) if patients is None else self._ids(x.c.target_id, patients))
        return _probe(rows)

    def _compartment_pairs(self) -> list[tuple[str, str]]:
        return [(t, p) for t in self.types for p in _compartment_params(t)]

    def _params(self, x) -> ColumnElement:
        pairs = self._compartment_pairs()
        if not pairs:
            return false()
        params = sorted({p for _, p in pairs})
        if len(self.types) == 1:
            return _in_list(x.c.param, params)
        return tuple_(x.c.res_type, x.c.param).in_(pairs)

    def _ids(self, column, ids: frozenset[str]) -> ColumnElement:
        return _ids_in(self.uow, column, ids)


def _few(uow: UnitOfWork, rows) -> bool:
    """Whether `rows` holds at most SEMI_JOIN_ROWS rows (counted up to one more, from the index alone)."""
    limited = select(literal(1)).select_from(rows.subquery()).limit(SEMI_JOIN_ROWS + 1).subquery()
    return uow.conn.execute(select(func.count()).select_from(limited)).scalar_one() <= SEMI_JOIN_ROWS


def _probe(rows) -> ColumnElement:
    """EXISTS (rows), checked per candidate through the rid index (OFFSET 0 keeps PostgreSQL from
    turning it into a join it would drive by its own, often poor, estimates)."""
    return exists(rows.offset(0))


def _in_list(column, values: Sequence[str]) -> ColumnElement:
    values = list(values)
    return column == values[0] if len(values) == 1 else column.in_(values)


def _codings(t, codings) -> ColumnElement:
    """(system, code) in `codings`, on idx_token alias `t`."""
    tests = [and_(t.c.code == code, t.c.system.is_(None) if system is None else t.c.system == system)
             for system, code in sorted(codings, key=lambda c: (c[0] or "", c[1] or ""))]
    return tests[0] if len(tests) == 1 else or_(*tests)


def _ids_in(uow: UnitOfWork, column, ids: frozenset[str]) -> ColumnElement:
    """`column IN ids`; a long list as one parameter: an array on PostgreSQL, a JSON array on SQLite."""
    values = sorted(ids)
    if len(values) <= LONG_LIST:
        return _in_list(column, values)
    if uow.store.dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(String)))
    import json

    listed = func.json_each(bindparam(None, json.dumps(values), type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))
