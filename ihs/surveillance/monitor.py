"""Daily aberration detection over the syndromic counts, and the alerts it raises.

Methods that look back over years (farrington, noufaily, noufaily-window2 and the default,
harmonic-window2) run on weekly sums: 7-day blocks ending on the day assessed, so the day-of-week
pattern of visits cancels out and a year is 52 points, the design they were built and benchmarked
for. They need five years and a month of counts, and are given up to ten (the default's baseline
uses them), from the first week with a visit on: the days before counting began are not zeros. With
less history, or for the EARS/CUSUM/EWMA methods, the daily series is used (EARS C2 when the chosen
method cannot run yet).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from ihs.store.store import Store
from ihs.surveillance import alerts, counts
from ihs.surveillance.detection import DEFAULT_METHOD, METHODS
from ihs.surveillance.syndromes import syndromes

WEEKLY = {"farrington", "noufaily", "noufaily-window2", "harmonic-window2"}
WEEKS_NEEDED = 52 * 5 + 4
WEEKS_USED = 52 * 10 + 4  # the default's baseline looks back up to ten years
DAYS_SHOWN = 56  # daily counts fetched for the daily methods
POINTS_SHOWN = 52  # points of the series an alert carries
FALLBACK = "ears-c2"


@dataclass
class Assessment:
    """The latest point of one series as a method judged it."""

    signal: alerts.Signal
    alarm: bool


def assess(store: Store, syndrome: str, day: date, *, district: str | None = None, method: str = DEFAULT_METHOD,
           alpha: float = 0.01) -> Assessment | None:
    """Judge `day` for the syndrome (in one district, or the whole region); None without enough history."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    filters = {"district": district} if district else {}
    weekly = method in WEEKLY
    span = (WEEKS_USED + POINTS_SHOWN - 1) * 7 if weekly else DAYS_SHOWN
    start = day - timedelta(days=span - 1)
    daily = np.asarray(counts.series(store, syndrome, start, day, **filters), dtype=float)
    if weekly:
        visited = np.flatnonzero(daily)
        began = int(visited[0]) // 7 * 7 if len(visited) else len(daily)  # whole weeks before the first visit
        weekly = len(daily) - began >= WEEKS_NEEDED * 7
    if weekly:
        daily = daily[began:]
        start += timedelta(days=began)
        values = daily.reshape(-1, 7).sum(axis=1)
        labels = [(start + timedelta(days=7 * i + 6)).isoformat() for i in range(len(values))]
    else:
        values = daily[-DAYS_SHOWN:]
        labels = [(day - timedelta(days=len(values) - 1 - i)).isoformat() for i in range(len(values))]
    chosen = method if weekly or method not in WEEKLY else FALLBACK
    last = len(values) - 1
    try:
        result = METHODS[chosen](values, alpha=alpha, points=[last])
    except ValueError:
        return None
    if np.isnan(result.upperbound[last]) and np.isnan(result.expected[last]):
        return None
    if result.alarm[last]:  # an alert shows the threshold over the weeks before too
        result = _over_shown_points(METHODS[chosen], values, alpha, last) or result
    shown = slice(max(0, last - POINTS_SHOWN + 1), last + 1)
    signal = alerts.Signal(
        syndrome, district or alerts.WHOLE_REGION, day, chosen, alpha, float(values[last]),
        _number(result.upperbound[last]), _number(result.expected[last]), labels[shown],
        values[shown].tolist(), [_optional(v) for v in result.expected[shown]],
        [_optional(v) for v in result.upperbound[shown]])
    return Assessment(signal, bool(result.alarm[last]))


def detect(store: Store, day: date, *, syndrome_codes: list[str] | None = None, method: str = DEFAULT_METHOD,
           alpha: float = 0.01, by_district: bool = True) -> list[tuple[Assessment, object, object]]:
    """Assess every syndrome for the region and each district seen lately; alert on alarms.

    Returns (assessment, Flag, Communication) per alarm; alerts raised before are returned, not repeated.
    """
    codes = syndrome_codes or list(syndromes())
    places = [None] + (counts.values_of(store, "district", day - timedelta(days=27), day) if by_district else [])
    raised = []
    for code in codes:
        for district in places:
            found = assess(store, code, day, district=district, method=method, alpha=alpha)
            if found is None or not found.alarm:
                continue
            with store.session(write=True) as uow:
                flag, communication, _ = alerts.raise_alert(uow, found.signal)
            raised.append((found, flag, communication))
    return raised


def _over_shown_points(method, values: np.ndarray, alpha: float, last: int):
    """The method over as many of the shown points as have the history it needs."""
    for first in range(max(0, last - POINTS_SHOWN + 1), last + 1):
        try:
            return method(values, alpha=alpha, points=list(range(first, last + 1)))
        except ValueError:
            continue
    return None


def _number(value: float) -> float:
    return float(value) if np.isfinite(value) else float("nan")


def _optional(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
