"""FHIRPath dates, dateTimes and times: comparison across precisions and time zones, and boundaries.

Values stay the strings FHIR writes (`2010-10`, `2015-02-07T13:28:17.239+02:00`, `18:12:00`);
they are parsed only when compared or bounded. Two values of different precision that agree on
their common precision are incomparable: FHIRPath answers empty, not true or false.
"""
from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

_DATETIME = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?)?)?"
                       r"(Z|[+-]\d{2}:\d{2})?$")
_TIME = re.compile(r"(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?$")
TEMPORAL_TYPES = frozenset({"date", "dateTime", "instant", "time"})


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _parts(value: str, kind: str):
    """(precision, components) with components normalized to UTC when the value has a time of day."""
    if kind == "time":
        match = _TIME.match(value)
        if not match:
            return None
        hour, minute, second, fraction = match.groups()
        fields = [hour, minute, second]
        precision = sum(1 for f in fields if f is not None)
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        return precision, (int(hour), int(minute or 0), int(second or 0), micros)
    match = _DATETIME.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    fields = [year, month, day, hour, minute, second]
    precision = sum(1 for f in fields if f is not None)
    if precision <= 3:
        return precision, (int(year), int(month or 1), int(day or 1), 0, 0, 0, 0)
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0), micros,
                      tzinfo=_zone(zone) or timezone.utc).astimezone(timezone.utc)
    return precision, (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
                       moment.microsecond)


def compare(left: str, right: str, kind: str = "dateTime") -> int | None:
    """-1, 0 or 1; None when the two are incomparable (different precisions that agree, or not parseable)."""
    a, b = _parts(left, kind), _parts(right, kind)
    if a is None or b is None:
        return None
    (pa, va), (pb, vb) = a, b
    if pa == pb:
        return (va > vb) - (va < vb)
    common = min(pa, pb)
    ta, tb = va[:common], vb[:common]
    if ta == tb:
        return None
    return (ta > tb) - (ta < tb)


def low_boundary(value, kind: str):
    """The least value `value` could stand for at full precision (FHIRPath lowBoundary())."""
    return _boundary(value, kind, high=False)


def high_boundary(value, kind: str):
    """The greatest value `value` could stand for at full precision (FHIRPath highBoundary())."""
    return _boundary(value, kind, high=True)


def _boundary(value, kind: str, *, high: bool):
    if kind in ("decimal", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return None
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        half = Decimal(5).scaleb(exact.as_tuple().exponent - 1)
        return float(exact + half if high else exact - half)
    if not isinstance(value, str):
        return None
    if kind == "time":
        match = _TIME.match(value)
        if not match:
            return None
        hour, minute, second, fraction = match.groups()
        fill = "59" if high else "00"
        return f"{hour}:{minute or fill}:{second or fill}.{_millis(fraction, high)}"
    match = _DATETIME.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    month = month or ("12" if high else "01")
    day = day or (f"{calendar.monthrange(int(year), int(month))[1]:02d}" if high else "01")
    if kind == "date":
        return f"{year}-{month}-{day}"
    fill = "59" if high else "00"
    clock = f"{hour or ('23' if high else '00')}:{minute or fill}:{second or fill}.{_millis(fraction, high)}"
    # without a zone the value could be in any of them: the earliest starts at +14:00, the latest ends at -12:00
    return f"{year}-{month}-{day}T{clock}{zone or ('-12:00' if high else '+14:00')}"


def _millis(fraction: str | None, high: bool) -> str:
    if fraction:
        return fraction[:3].ljust(3, "9" if high else "0")
    return "999" if high else "000"
