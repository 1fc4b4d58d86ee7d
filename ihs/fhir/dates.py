"""FHIR date, dateTime and instant values as microsecond ranges (UTC).

A partial date covers its whole precision: "2020" is [2020-01-01, 2021-01-01). Values without a
time zone are read as UTC.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ihs.fhir.errors import FhirError

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$")


def micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def date_range(value: str) -> tuple[int, int] | None:
    """[low, high) in microseconds for a FHIR date/dateTime/instant, or None if it is not one."""
    m = _DATE.match(value)
    if not m:
        return None
    y, mo, d = int(m["y"]), int(m["m"] or 1), int(m["d"] or 1)
    tz = timezone.utc
    if m["tz"] and m["tz"] != "Z":
        sign = 1 if m["tz"][0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(m["tz"][1:3]), minutes=int(m["tz"][4:6])))
    try:
        if m["H"] is None:
            start = datetime(y, mo, d, tzinfo=timezone.utc)
            if m["d"]:
                end = start + timedelta(days=1)
            elif m["m"]:
                end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=timezone.utc)
            else:
                end = datetime(y + 1, 1, 1, tzinfo=timezone.utc) if y < 9999 else datetime.max.replace(tzinfo=timezone.utc)
            return micros(start), micros(end)
        fraction = m["f"] or ""
        start = datetime(y, mo, d, int(m["H"]), int(m["M"]), int(m["S"] or 0), int((fraction + "000000")[:6]), tzinfo=tz)
    except ValueError:
        return None
    if m["S"] is None:
        step = timedelta(minutes=1)
    elif not fraction:
        step = timedelta(seconds=1)
    else:
        step = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    return micros(start), micros(start + step)


def parse_instant_param(name: str, value: str) -> int:
    """The start of a date/instant given as a query parameter, or a 400 naming the parameter."""
    found = date_range(value)
    if found is None:
        raise FhirError(f"{name} must be a FHIR instant such as 2024-01-31T08:00:00Z, not '{value}'", expression=name)
    return found[0]
