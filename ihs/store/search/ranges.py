"""Two-sided date ranges (`birthdate=ge1970&birthdate=lt1980`) as one test, where that is exact.

Each bound alone matches most resources (everything after 1970, everything before 1980), so neither
can drive a search. When the parameter holds at most one value per resource, both bounds hold on
the same index row and can be tested together. When its values are dates, dateTimes or instants
(never Periods), a value spans at most a year, so `high > x` implies `low > x - 1 year` and the test
becomes a narrow range of the (res_type, param, low) index. A Period can be of any length, but most
(an encounter, a visit) last a day or less: `high > x` implies `low > x - 1 day OR high - low > 1
day`, a narrow range of the low index or a row of the partial index of long rows (idx_date_long,
ihs/store/schema.py), selected as two branches of a UNION ALL.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import select

from ihs.fhir.definitions import structures
from ihs.fhir.searchparams import SearchParam, union_parts
from ihs.store.schema import LONG_DATE, LONG_ROWS, idx_date
from ihs.store.search.conditions import date_match, type_filter
from ihs.store.search.query import Leaf
from ihs.store.search.slots import derived

YEAR_AND_A_DAY = 367 * 86_400_000_000  # the longest span of a date value (a leap year), in microseconds
_LOWER = ("gt", "ge", "sa")
_UPPER = ("lt", "le", "eb")


@dataclass(frozen=True)
class Window:
    """A lower and an upper bound on one single-valued date parameter, tested on the same index row."""

    param: SearchParam
    lower: Leaf
    upper: Leaf


def _bound(leaf) -> str | None:
    if not isinstance(leaf, Leaf) or leaf.param.type != "date" or leaf.modifier or len(leaf.values) != 1:
        return None
    if leaf.param.code == "_lastUpdated":
        return None
    prefix = leaf.values[0].prefix
    return "lower" if prefix in _LOWER else "upper" if prefix in _UPPER else None


def windows(nodes: list) -> list:
    """`nodes` with each lower/upper pair on a single-valued date parameter merged into a Window."""
    out, used = list(nodes), set()
    for i, a in enumerate(nodes):
        for j, b in enumerate(nodes):
            if i in used or j in used or i == j or _bound(a) != "lower" or _bound(b) != "upper":
                continue
            if a.param.url == b.param.url and single_valued(a.param):
                out[i] = Window(a.param, a, b)
                used.update((i, j))
    return [n for k, n in enumerate(out) if k not in used or isinstance(n, Window)]


def window_rows(window: Window, types, driving: bool = True):
    """SELECT rid of the index rows inside the window; driving, bounded below on `low` by the span of a value."""
    c = idx_date.c
    lower, upper = window.lower.values[0], window.upper.values[0]
    rows = select(c.rid).where(type_filter(c.res_type, types), c.param == window.param.code,
                               date_match(c.low, c.high, lower), date_match(c.low, c.high, upper))
    # implied by the lower bound (high > start) and the longest span of a value; a probe by rid needs no range
    if not driving:
        return rows
    if point_like(window.param):
        return rows.where(c.low > derived(lower.low, _a_year_before))
    # two branches, not an OR, which SQLite would not serve with two indexes
    start = derived(lower.low, _long_before)
    return rows.where(c.low > start).union_all(rows.where(c.low <= start, LONG_ROWS))


def _a_year_before(micros: int) -> int:
    return micros - YEAR_AND_A_DAY


def _long_before(micros: int) -> int:
    return micros - LONG_DATE


@cache
def _elements(key: str) -> dict:
    return structures()["types"].get(key, {})


def _path(param: SearchParam) -> list[list[dict]] | None:
    """The model elements each step of a plain dotted expression reaches (a choice gives several)."""
    expression = param.expression or ""
    if len(union_parts(expression)) != 1 or any(ch in expression for ch in "()[]'"):
        return None
    steps = expression.split(".")
    owner, groups = steps[0], []
    for step in steps[1:]:
        found = [e for name, e in _elements(owner).items() if name == step or e.get("choice") == step]
        if not found:
            return None
        groups.append(found)
        owner = found[0]["type"]
    return groups or None


@cache
def single_valued(param: SearchParam) -> bool:
    """True when the parameter's expression is a plain path of elements that repeat at most once."""
    groups = _path(param)
    return groups is not None and all(e.get("max", "1") == "1" for group in groups for e in group)


@cache
def point_like(param: SearchParam) -> bool:
    """True when every value is a date, dateTime or instant (never a Period): at most a year long."""
    groups = _path(param)
    return groups is not None and all(e["type"] in ("date", "dateTime", "instant") for e in groups[-1])
