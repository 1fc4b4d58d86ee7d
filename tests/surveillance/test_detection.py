"""The detectors against their published definitions, on series small enough to check by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from ihs.surveillance.detection import DEFAULT_METHOD, METHODS, cusum, ears, ewma
from ihs.surveillance.detection.control import cusum_limit
from ihs.surveillance.detection.farrington import noufaily_window, quantile, seasonal_blocks
from ihs.surveillance.detection.glm import fit


def test_ears_c1_bound_is_mean_plus_z_sd_of_the_seven_days_before():
    series = [4, 6, 5, 7, 3, 5, 4, 12]
    result = ears(series, "C1", alpha=0.001)
    window = np.array(series[:7], dtype=float)
    assert result.upperbound[7] == pytest.approx(window.mean() + norm.ppf(0.999) * window.std(ddof=1))
    assert result.alarm[7] and not result.alarm[:7].any()


def test_ears_c2_skips_a_two_day_guard_band():
    series = [5, 5, 6, 4, 5, 5, 6, 40, 40, 6]
    result = ears(series, "C2", alpha=0.01)
    window = np.array(series[:7], dtype=float)
    assert result.upperbound[9] == pytest.approx(window.mean() + norm.ppf(0.99) * window.std(ddof=1))
    assert not result.alarm[9]


def test_ears_c3_sums_the_excess_of_three_days_of_c2():
    base = [5, 6, 5, 4, 6, 5, 5, 6, 5]
    series = base + [9, 9, 9]
    result = ears(series, "C3", alpha=0.025)
    excess = []
    for t in (9, 10, 11):
        window = np.array(series[t - 9:t - 2], dtype=float)
        excess.append(max(0.0, (series[t] - window.mean()) / window.std(ddof=1) - 1))
    assert result.alarm[11] == (sum(excess) > norm.ppf(0.975))


def test_cusum_limit_gives_the_in_control_run_length_one_over_alpha():
    h = cusum_limit(0.01, 0.5)
    b = h + 1.166
    assert (math.exp(b) - b - 1) / 0.5 == pytest.approx(100)


def test_cusum_and_ewma_stay_quiet_on_a_flat_series_and_alarm_on_a_step():
    rng = np.random.default_rng(3)
    quiet = rng.poisson(20, 200).astype(float)
    stepped = quiet.copy()
    stepped[150:] += 25
    for chart in (cusum, ewma):
        assert chart(quiet, alpha=0.01).alarm[30:].mean() < 0.05
        assert chart(stepped, alpha=0.01).alarm[150:155].any()


def test_quasi_poisson_fit_recovers_a_log_linear_mean():
    rng = np.random.default_rng(5)
    t = np.arange(1, 401, dtype=float)
    y = rng.poisson(np.exp(1.0 + 0.004 * t))
    model = fit(np.column_stack([np.ones_like(t), t]), y, ["intercept", "wtime"])
    assert model.converged
    assert model.coef == pytest.approx([1.0, 0.004], abs=0.08)
    assert model.p_value("wtime") < 1e-6


def test_noufaily_blocks_put_reference_windows_in_the_last_group_and_cut_the_rest_in_nine():
    blocks = seasonal_blocks(300, 290, freq=52, b=5, w=3, no_periods=10)
    assert blocks[290 - 3:291].tolist() == [10] * 4
    assert blocks[290 - 52 - 3:290 - 52 + 4].tolist() == [10] * 7
    between = blocks[290 - 52 + 4:290 - 3]
    assert sorted(set(between.tolist())) == list(range(1, 10))
    assert blocks[:290 - 5 * 52 - 3].sum() == 0


def test_two_week_window_alarms_on_an_outbreak_spread_over_two_weeks():
    rng = np.random.default_rng(11)
    t = np.arange(1, 313)
    counts = rng.poisson(np.exp(2.5 + 0.5 * np.cos(2 * np.pi * t / 52))).astype(float)
    quiet = noufaily_window(counts, alpha=0.01, points=[310, 311])
    counts[310:312] += [9, 9]
    loud = noufaily_window(counts, alpha=0.01, points=[310, 311])
    assert not quiet.alarm[311]
    assert loud.alarm[311]
    assert counts[311] > loud.upperbound[311] >= quantile(2 * loud.expected[311], 1.0, 0.99) - counts[310] - 1e-9


def test_every_method_is_registered_with_a_default():
    assert DEFAULT_METHOD in METHODS
    assert {"ears-c1", "ears-c2", "ears-c3", "cusum", "ewma", "farrington", "noufaily"} <= set(METHODS)
