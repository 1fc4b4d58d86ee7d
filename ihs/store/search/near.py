"""`near` on Location: `near=[latitude]|[longitude]|[distance]|[units]` (R4 Location search parameters).

Matches locations whose Location.position lies within `distance` of the point, along the surface of
the earth (a sphere of the WGS84 mean radius; the spheroid would move a border case by 0.5% at
most). Units are UCUM: km (the default), m, [mi_i] or [nmi_i]; without a distance, "near" means
within DEFAULT_KM. idx_position (ihs/store/schema.py) keeps each position with its point on the unit
sphere: the latitude band that can hold a match is read by index, then the great-circle distance is
compared as a chord, with no trigonometry in SQL.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import or_, select
from sqlalchemy.sql.elements import ColumnElement

from ihs.fhir.errors import FhirError
from ihs.store.schema import idx_position
from ihs.store.search import values as v
from ihs.store.search.special import Special

EARTH_KM = 6371.0088  # mean radius of the WGS84 ellipsoid
DEFAULT_KM = 5.0
UNITS_KM = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344, "[nmi_i]": 1.852}


@dataclass(frozen=True)
class Point:
    latitude: float
    longitude: float
    km: float


@dataclass(frozen=True)
class Near(Special):
    points: tuple[Point, ...]  # alternatives (OR)
    rank: int = 3

    def condition(self, r, types: Sequence[str] | None, driving: bool) -> ColumnElement:
        from ihs.store.search.conditions import rows_test  # conditions imports the parser, which imports this

        p = idx_position.c
        tests = [_within(p, point) for point in self.points]
        rows = select(p.rid).where(p.res_type == "Location", or_(*tests) if len(tests) > 1 else tests[0])
        return rows_test(r.c.rid, rows, negated=False, driving=driving)


def _within(p, point: Point) -> ColumnElement:
    angle = min(point.km / EARTH_KM, math.pi)  # radians of arc
    band = math.degrees(angle)
    phi, lam = math.radians(point.latitude), math.radians(point.longitude)
    x, y, z = math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)
    chord = 2 * math.sin(angle / 2)
    squared = (p.x - x) * (p.x - x) + (p.y - y) * (p.y - y) + (p.z - z) * (p.z - z)
    # a little slack on the band so that rounding never drops a point on its edge
    return (p.latitude >= point.latitude - band - 1e-9) & (p.latitude <= point.latitude + band + 1e-9) \
        & (squared <= chord * chord * (1 + 1e-12))


def _number(text: str, what: str, low: float, high: float) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not low <= number <= high:
        raise v.BadValue(f"the {what} '{text}' is not a number from {low:g} to {high:g}")
    return number


def _point(text: str) -> Point:
    parts = v.split_unescaped(text, "|")
    if not 2 <= len(parts) <= 4:
        raise v.BadValue(f"'{text}' is not [latitude]|[longitude]|[distance]|[units] (e.g. 52.37|4.89|10|km)")
    latitude = _number(v.unescape(parts[0]), "latitude", -90, 90)
    longitude = _number(v.unescape(parts[1]), "longitude", -180, 180)
    distance = v.unescape(parts[2]) if len(parts) > 2 else ""
    units = v.unescape(parts[3]) if len(parts) > 3 else ""
    if units and units not in UNITS_KM:
        raise v.BadValue(f"the units '{units}' are not known; use {', '.join(UNITS_KM)}")
    if not distance:
        return Point(latitude, longitude, DEFAULT_KM)
    return Point(latitude, longitude, _number(distance, "distance", 0, math.inf) * UNITS_KM[units or "km"])


def parse(name: str, value: str) -> Near:
    if ":" in name:
        raise FhirError(f"search parameter '{name}': near takes no modifier", code="not-supported")
    try:
        return Near(tuple(_point(part) for part in v.split_unescaped(value, ",")))
    except v.BadValue as exc:
        raise FhirError(f"search parameter '{name}': {exc}") from None
