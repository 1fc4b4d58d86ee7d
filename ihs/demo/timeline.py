"""Time in the demo region: China Standard Time, clinic hours, and the visits a history holds."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from ihs.demo.region import Site, Staff

CHINA = timezone(timedelta(hours=8))


def fhir_datetime(moment: datetime) -> str:
    """An R4 dateTime/instant with seconds and the +08:00 offset."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def clinic_time(rng: random.Random, day: date) -> datetime:
    """A moment during outpatient hours (08:00-11:30, 13:30-16:30)."""
    start = time(8, 0) if rng.random() < 0.65 else time(13, 30)
    minutes = rng.randrange(0, 180 if start.hour == 8 else 150)
    return datetime.combine(day, start, CHINA) + timedelta(minutes=minutes)


def any_time(rng: random.Random, day: date) -> datetime:
    """A moment at any hour of the day, for emergencies."""
    return datetime.combine(day, time(0, 0), CHINA) + timedelta(minutes=rng.randrange(24 * 60))


def day_between(rng: random.Random, first: date, last: date) -> date:
    """A day drawn uniformly from first..last (first when the span is empty)."""
    return first + timedelta(days=rng.randrange(max((last - first).days, 0) + 1))


@dataclass(frozen=True)
class Visit:
    """An Encounter as the rest of the history refers to it."""

    urn: str | None  # the Encounter's urn; None for a visit that is only booked
    start: datetime
    end: datetime
    site: Site
    department: str | None
    practitioner: Staff
    nurse: Staff
