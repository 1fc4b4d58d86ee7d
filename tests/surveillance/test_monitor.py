"""The daily run: weekly sums for the default method with five years of counts, EARS C2 before that."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from ihs.store import search
from ihs.surveillance import alerts, counts, monitor
from ihs.surveillance.detection import METHODS
from ihs.surveillance.visits import Visit


def _visits(store, last: date, days: int, spike: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    batch = []
    for back in range(days):
        day = last - timedelta(days=back)
        seasonal = 3 + 2 * np.cos(2 * np.pi * day.timetuple().tm_yday / 365.25)
        n = int(rng.poisson(seasonal)) + (spike if back < 10 else 0)
        batch += [(f"{day}-{i}", Visit(f"{day}-{i}", day, "安吉县", "Organization/x", "5-14", "female", ("ili",)))
                  for i in range(n)]
    counts.record_many(store, batch)


def test_six_years_of_counts_are_judged_weekly_by_the_default_method(surveillance_store):
    store = surveillance_store
    last = date(2024, 12, 31)
    _visits(store, last, 6 * 365, spike=6)  # five years of history behind each of the 52 weeks shown
    found = monitor.assess(store, "ili", last)
    assert found.signal.method == monitor.DEFAULT_METHOD
    assert len(found.signal.series) == 52 and found.signal.periods[-1] == last.isoformat()
    assert found.alarm and found.signal.observed > found.signal.upperbound
    assert all(bound is not None for bound in found.signal.upper_series)
    raised = monitor.detect(store, last, syndrome_codes=["ili"])
    assert {a.signal.district for a, _, _ in raised} == {alerts.WHOLE_REGION, "安吉县"}
    carried = alerts.series_of(raised[0][2].resource())
    assert carried["method"] == "harmonic-window2" and carried["alpha"] == 0.01
    assert carried["series"][-1] == carried["observed"] > carried["threshold"] == carried["upperbounds"][-1]
    assert len(carried["series"]) == len(carried["upperbounds"]) == 52
    with store.session() as uow:
        assert len(search.find(uow, "Flag", [("identifier", f"{alerts.ALERT}|")], limit=10)) == 2


def test_the_weekly_series_begins_with_the_first_week_counted_not_with_empty_years(surveillance_store):
    store = surveillance_store
    last = date(2024, 12, 31)
    _visits(store, last, 7 * 365, spike=0)  # 365 weeks, within the ten years the default may use
    found = monitor.assess(store, "ili", last)
    daily = counts.series(store, "ili", last - timedelta(days=7 * 365 - 1), last)
    weekly = np.asarray(daily, dtype=float).reshape(-1, 7).sum(axis=1)
    default = METHODS[monitor.DEFAULT_METHOD]
    assert found.signal.expected == pytest.approx(default(weekly, alpha=0.01, points=[364]).expected[364])
    padded = np.concatenate([np.zeros(100), weekly])  # the years before counting began taken as zeros
    assert found.signal.expected != pytest.approx(default(padded, alpha=0.01, points=[464]).expected[464])


def test_counts_begun_less_than_five_years_and_a_month_ago_are_judged_by_ears_c2(surveillance_store):
    store = surveillance_store
    last = date(2024, 12, 31)
    _visits(store, last, (monitor.WEEKS_NEEDED - 1) * 7, spike=0)
    assert monitor.assess(store, "ili", last).signal.method == "ears-c2"
    _visits(store, last - timedelta(days=(monitor.WEEKS_NEEDED - 1) * 7), 7, spike=0, seed=2)  # one week earlier
    assert monitor.assess(store, "ili", last).signal.method == monitor.DEFAULT_METHOD


def test_a_short_history_falls_back_to_ears_c2_on_daily_counts(surveillance_store):
    store = surveillance_store
    last = date(2024, 6, 30)
    _visits(store, last, 90, spike=0)
    found = monitor.assess(store, "ili", last)
    assert found.signal.method == "ears-c2" and len(found.signal.series) == monitor.POINTS_SHOWN
    assert monitor.assess(store, "rash", last).alarm is False
