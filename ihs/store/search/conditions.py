"""One parameter test (a `Leaf`) compiled to a SQL condition over the idx_* tables.

Every test has the shape `resources.rid IN (SELECT rid FROM idx_<type> WHERE res_type = ? AND
param = ? AND (<value match> OR <value match> ...))` -- or NOT IN for :not, :not-in and
:missing=true -- so one main index per table serves it (docs/storage.md). `_id` and
`_lastUpdated` are answered from the resources table itself.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import and_, exists, false, literal, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from ihs.fhir.indexing import CANONICAL_ROW, UCUM
from ihs.store.protected import searched_codes
from ihs.store.schema import INDEX_TABLES
from ihs.store.search import hierarchy, values as v
from ihs.store.search.query import Leaf, composite_types
from ihs.store.search.slots import derived, slot_of


def type_filter(column, types: Sequence[str] | None) -> ColumnElement:
    if types is None:
        return true()
    return column == types[0] if len(types) == 1 else column.in_(list(types))


def rows_test(rid_column, rows, *, negated: bool, driving: bool) -> ColumnElement:
    """`rid IN (rows)` when these rows drive the search, else a correlated EXISTS probing the rid index.

    A driving test is evaluated once into a set; every other test is checked per candidate, which
    costs a few index lookups instead of materializing every matching row (e.g. every Observation
    dated after 2015). Negations are always NOT EXISTS (an anti-join on both backends).
    """
    if driving and not negated:
        return rid_column.in_(rows)
    test = probe(rows.where(rows.selected_columns[0] == rid_column))
    return ~test if negated else test


def probe(rows) -> ColumnElement:
    """EXISTS (rows), evaluated per candidate.

    OFFSET 0 keeps PostgreSQL from turning it into a join that it would drive by its own row
    estimates, which multiply (res_type, param, value) selectivities as if independent and can be
    off a hundredfold; the planner here has already chosen what drives. SQLite is unaffected.
    """
    return exists(rows.offset(0))


def leaf_rows(leaf: Leaf, types: Sequence[str] | None):
    """(SELECT rid FROM idx_<type> WHERE <the test>, negated) for an index-backed test."""
    table_name, param_name = _table_of(leaf)
    # the table itself, not an alias: no enclosing query selects from an idx_* table directly
    c = INDEX_TABLES[table_name].c
    rows = select(c.rid).where(type_filter(c.res_type, types), c.param == param_name)
    if leaf.modifier == "missing":
        return rows, negated(leaf)
    matches = [_match(leaf, c, value) for value in leaf.values]
    return rows.where(or_(*matches) if len(matches) > 1 else matches[0]), negated(leaf)


def negated(leaf: Leaf) -> bool:
    """Whether `leaf_rows` gives the rows a match must not have (:not, :not-in, :missing=true)."""
    return leaf.modifier in ("not", "not-in") or (leaf.modifier == "missing" and leaf.values[0])


def leaf_condition(leaf: Leaf, r, types: Sequence[str] | None, driving: bool = True) -> ColumnElement:
    """The condition on the resources alias `r` for `leaf`; `types` limits the index rows (None: any)."""
    code = leaf.param.code
    if code == "_id":
        return _id_condition(leaf, r)
    if code == "_lastUpdated":
        return _last_updated_condition(leaf, r)
    # a probe names the rid, which implies the type: leaving the type out steers both databases to the
    # rid index instead of a (res_type, param, value) range
    rows, negated = leaf_rows(leaf, types if driving else None)
    return rows_test(r.c.rid, rows, negated=negated, driving=driving)


def selectivity(leaf: Leaf) -> int:
    """A rank of how few rows a test is likely to match (lower: fewer), to pick the driving test."""
    kind, modifier = leaf.param.type, leaf.modifier
    if leaf.param.code == "_id":
        return 0
    if kind == "reference" and modifier in ("above", "below"):
        return 2  # a subtree of a hierarchy: usually a few resources
    if modifier in ("missing", "not", "not-in", "contains", "text", "below", "above", "in"):
        return 9
    if kind == "reference" or modifier in ("identifier", "of-type"):
        return 1
    if kind in ("token", "uri"):
        return 2
    if kind == "string":
        return 3 if modifier == "exact" or min(len(value) for value in leaf.values) >= 3 else 6
    if kind == "composite":
        return 4
    if kind == "date" and all(v.prefix == "eq" and v.high - v.low <= _DAY for v in leaf.values):
        return 1  # a day or less: a narrow range of the low index
    if kind in ("date", "number", "quantity") and all(value_of(v).prefix in ("eq", "ap") for v in leaf.values):
        return 5
    return 8


_DAY = 86_400_000_000


def value_of(value):
    """The comparable part of a value (a quantity's number)."""
    return value.number if isinstance(value, v.Quantity) else value


def _table_of(leaf: Leaf) -> tuple[str, str]:
    code, kind = leaf.param.code, leaf.param.type
    if leaf.modifier == "identifier":
        return "token", code + ":identifier"
    if leaf.modifier == "of-type":
        return "token", code + ":of-type"
    return kind, code


def _match(leaf: Leaf, c, value) -> ColumnElement:
    kind, modifier = leaf.param.type, leaf.modifier
    if kind == "string":
        if modifier == "exact":
            return c.exact == value
        return contains(c.value, value) if modifier == "contains" else starts_with(c.value, value)
    if modifier == "identifier":
        return token_match(c.system, c.code, value, identifier=True)
    if kind == "token":
        if modifier == "text":
            return or_(starts_with(c.text, value), contains(c.text, derived(value, _word_start)))
        if modifier == "of-type":
            type_token, identifier = value
            return and_(c.system == type_token.system,
                        _code_in(c.code, [f"{type_token.code}|{code}" for code in searched_codes(None, identifier)]))
        if modifier in ("in", "not-in", "above", "below"):
            return coded_in(c.system, c.code, value)
        return token_match(c.system, c.code, value, identifier=leaf.param.code == "identifier")
    if kind == "reference":
        if modifier in ("above", "below"):
            return hierarchy.reference_match(c, value, modifier)
        return reference_match(c, value, leaf.target_type)
    if kind == "date":
        return date_match(c.low, c.high, value)
    if kind == "number":
        return number_match(c.value, value)
    if kind == "quantity":
        return quantity_match(c, value)
    if kind == "uri":
        return uri_match(c.uri, value, modifier)
    if kind == "composite":
        return composite_match(leaf, c, value)
    raise ValueError(f"no SQL for {kind} parameters")


# ---------------------------------------------------------------------------- per type

def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _past_prefix(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _like_prefix(prefix: str) -> str:
    return _like_escape(prefix) + "%"


def _like_inside(text: str) -> str:
    return "%" + _like_escape(text) + "%"


def _word_start(text: str) -> str:
    return " " + text


# values computed from a searched value go through `derived` (ihs/store/search/slots.py)
def starts_with(column, prefix: str) -> ColumnElement:
    """Prefix match that a B-tree index serves on both backends: a range, then LIKE for exactness."""
    return and_(column >= prefix, column < derived(prefix, _past_prefix),
                column.like(derived(prefix, _like_prefix), escape="\\"))


def contains(column, text: str) -> ColumnElement:
    return column.like(derived(text, _like_inside), escape="\\")


def token_match(system_col, code_col, token: v.Token, *, identifier: bool = False) -> ColumnElement:
    """`identifier`: the codes are Identifier values, indexed as a keyed hash when protected (ihs/store/protected.py)."""
    conditions = []
    if token.system is not None:
        conditions.append(system_col.is_(None) if token.system == "" else system_col == token.system)
    if token.code is not None:
        codes = identifier_codes(token.system, token.code) if identifier else [token.code]
        conditions.append(_code_in(code_col, codes))
    return and_(*conditions) if conditions else true()


def identifier_codes(system: str | None, code: str) -> list[str]:
    """`searched_codes`, a hashed code derived from the searched one (ihs/store/search/slots.py)."""
    codes = searched_codes(system, code)
    if slot_of(code) is None:
        return codes
    return [found if found == code else derived(code, _hashed) for found in codes]


def _hashed(code: str) -> str:
    # the keyed hash of the store in use: the last code searched for an identifier of unknown system
    return searched_codes(None, code)[-1]


def _code_in(code_col, codes: list[str]) -> ColumnElement:
    return code_col == codes[0] if len(codes) == 1 else code_col.in_(codes)


def coded_in(system_col, code_col, codes_by_system: dict) -> ColumnElement:
    """(system, code) in a set given as system -> codes (system None: any system).

    A value without a system (a `code` element, whose system its binding implies) matches by code.
    """
    groups = []
    for system, codes in sorted(codes_by_system.items(), key=lambda item: item[0] or ""):
        in_codes = code_col.in_(sorted(codes))
        groups.append(in_codes if system is None else
                      and_(or_(system_col == system, system_col.is_(None)), in_codes))
    return or_(*groups) if groups else false()


def reference_match(c, ref: v.Reference, target_type: str | None) -> ColumnElement:
    if ref.url is not None:
        return c.url == ref.url
    wanted = ref.type or target_type
    if ref.type and target_type and ref.type != target_type:
        return false()
    if wanted:
        return and_(c.target_id == ref.id, c.target_type == wanted)
    return c.target_id == ref.id


def date_match(low, high, d: v.DateRange, now: int | None = None) -> ColumnElement:
    """The R4 prefix semantics over the stored range [low, high) and the searched range [ps, pe)."""
    ps, pe = d.low, d.high
    p = d.prefix
    if p == "eq":
        return and_(low >= ps, low < pe, high <= pe)
    if p == "ne":
        return or_(low < ps, high > pe)
    if p == "gt":
        return high > pe
    if p == "lt":
        return low < ps
    if p == "ge":
        return and_(high > ps, or_(high > pe, and_(low >= ps, high <= pe)))
    if p == "le":
        return and_(low < pe, or_(low < ps, and_(low >= ps, high <= pe)))
    if p == "sa":
        return low >= pe
    if p == "eb":
        return high <= ps
    a, b = v.approximate(ps, pe, now if now is not None else v.now_micros())
    return and_(low < b, high > a)


def number_match(column, n: v.Number) -> ColumnElement:
    p = n.prefix
    if p == "eq":
        return and_(column >= n.low, column < n.high)
    if p == "ne":
        return or_(column < n.low, column >= n.high)
    if p in ("gt", "sa"):
        return column > n.value
    if p in ("lt", "eb"):
        return column < n.value
    if p == "ge":
        return column >= n.value
    if p == "le":
        return column <= n.value
    margin = abs(n.value) * 0.1
    return and_(column >= n.value - margin, column <= n.value + margin)


def quantity_match(c, q: v.Quantity) -> ColumnElement:
    canonical = q.canonical()
    if canonical:
        number, unit = canonical
        return and_(c.canonical_code == unit, number_match(c.canonical_value, number))
    conditions = [number_match(c.value, q.number)]
    if q.system:
        conditions.append(c.system == q.system)
    if q.code:
        conditions.append(c.code == q.code)
    return and_(*conditions)


def uri_prefixes(uri: str) -> list[str]:
    """The uri and every prefix of it ending before a '/' (what :above matches)."""
    start = uri.find("://")
    start = start + 3 if start >= 0 else 0
    found = [uri[:i] for i in range(start, len(uri)) if uri[i] == "/" and i > start]
    return found + [uri[:i + 1] for i in range(start, len(uri)) if uri[i] == "/" and i > start] + [uri]


def uri_match(column, uri: str, modifier: str | None) -> ColumnElement:
    if modifier == "below":
        return starts_with(column, uri)
    if modifier == "above":
        return column.in_(sorted(set(uri_prefixes(uri))))
    return column == uri


def composite_match(leaf: Leaf, c, value) -> ColumnElement:
    a, b = value
    _, second = composite_types(leaf.param)
    first = token_match(c.a_system, c.a_code, a)
    if second == "token":
        return and_(first, token_match(c.b_system, c.b_code, b))
    if second in ("reference", "uri"):
        return and_(first, c.b_code == b)
    if second == "string":
        return and_(first, starts_with(c.b_string, b))
    if second == "number":
        return and_(first, number_match(c.b_low, b))
    if second == "date":
        return and_(first, date_match(c.b_low, c.b_high, b))
    canonical = b.canonical()
    if canonical:
        number, unit = canonical
        return and_(first, c.b_system == UCUM, c.b_code == unit, number_match(c.b_low, number))
    # without a unit the number is compared as written, not with the restatement in canonical units
    conditions = [first, number_match(c.b_low, b.number), or_(c.b_string.is_(None), c.b_string != CANONICAL_ROW)]
    if b.system:
        conditions.append(c.b_system == b.system)
    if b.code:
        conditions.append(c.b_code == b.code)
    return and_(*conditions)


# ---------------------------------------------------------------------------- resource columns

def _id_condition(leaf: Leaf, r) -> ColumnElement:
    if leaf.modifier == "missing":
        return false() if leaf.values[0] else true()
    ids = sorted({token.code for token in leaf.values if token.code})
    condition = r.c.res_id.in_(ids)
    return ~condition if leaf.modifier == "not" else condition


def _last_updated_condition(leaf: Leaf, r) -> ColumnElement:
    if leaf.modifier == "missing":
        return false() if leaf.values[0] else true()
    # an instant of microsecond precision covers [t, t + 1)
    high = r.c.last_updated + literal(1)
    return or_(*(date_match(r.c.last_updated, high, d) for d in leaf.values))
