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
from ihs.surveillance.detection.harmonic import harmonic_baseline, harmonic_window


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


def _seasonal_series(seed: int, weeks: int = 6 * 52, level: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(1, weeks + 1)
    mu = np.exp(level + 0.002 * t + 0.5 * np.cos(2 * np.pi * t / 52) + 0.3 * np.sin(2 * np.pi * t / 52))
    return rng.negative_binomial(mu, 0.5).astype(float), mu  # variance 2 mu


def test_harmonic_baseline_recovers_a_seasonal_mean_with_trend():
    counts, mu = _seasonal_series(4)
    t = len(counts) - 1
    base = harmonic_baseline(counts, t, window=2)
    assert base.trend
    assert base.means == pytest.approx(mu[t - 1:t + 1], rel=0.15)
    assert 1.4 < base.phi < 2.8


def test_harmonic_baseline_down_weights_a_past_outbreak():
    counts, _ = _seasonal_series(8)
    t = len(counts) - 1
    clean = harmonic_baseline(counts, t).means[-1]
    counts[150:153] += [60, 80, 40]
    assert harmonic_baseline(counts, t).means[-1] == pytest.approx(clean, rel=0.05)


def test_harmonic_window_threshold_is_the_negative_binomial_quantile_of_the_two_week_sum():
    counts, _ = _seasonal_series(6)
    t = len(counts) - 1
    base = harmonic_baseline(counts, t, window=2)
    total = base.means.sum()
    spread = base.phi + base.means @ base.cov @ base.means / total
    result = harmonic_window(counts, alpha=0.01, points=[t])
    assert result.expected[t] == pytest.approx(base.means[-1])
    assert result.upperbound[t] == pytest.approx(max(quantile(total, spread, 0.99) - counts[t - 1], base.means[-1]))
    assert result.alarm[t] == (counts[t] > result.upperbound[t])


def test_harmonic_window_alarms_on_two_weeks_that_a_one_week_test_passes():
    counts, _ = _seasonal_series(11)
    last = len(counts) - 1
    assert not harmonic_window(counts, alpha=0.01, points=[last]).alarm[last]
    base = harmonic_baseline(counts, last, window=2)
    one_week = [quantile(m, base.phi + v / m, 0.99) for m, v in zip(base.means, np.diag(base.cov) * base.means ** 2)]
    counts[last - 1:] = one_week  # each week at its own one-week threshold, not above it
    result = harmonic_window(counts, alpha=0.01, points=[last])
    assert result.alarm[last] and counts[last] > result.upperbound[last]


def test_harmonic_window_does_not_alarm_again_when_the_latest_count_is_ordinary():
    counts, _ = _seasonal_series(12)
    last = len(counts) - 1
    counts[last - 1] += 200
    result = harmonic_window(counts, alpha=0.01, points=[last - 1, last])
    assert result.alarm[last - 1]
    counts[last] = np.floor(result.expected[last])
    again = harmonic_window(counts, alpha=0.01, points=[last])
    assert not again.alarm[last] and again.upperbound[last] == pytest.approx(again.expected[last])


def test_harmonic_baseline_fits_the_ten_years_before_the_point_and_no_older_counts():
    counts, _ = _seasonal_series(9, weeks=12 * 52)
    t = len(counts) - 1
    base = harmonic_baseline(counts, t, window=2)
    older = counts.copy()
    older[:t - 10 * 52] += 50  # more than ten years back: outside the fit
    assert harmonic_baseline(older, t, window=2).means == pytest.approx(base.means, rel=1e-12)
    recent = counts.copy()
    recent[t - 8 * 52:t - 7 * 52] += 5  # seven to eight years back: inside it
    assert harmonic_baseline(recent, t, window=2).means[-1] != pytest.approx(base.means[-1], rel=1e-3)


def test_harmonic_window_fits_all_the_history_a_series_has_between_five_and_ten_years():
    counts, _ = _seasonal_series(10, weeks=7 * 52)
    t = len(counts) - 1
    result = harmonic_window(counts, alpha=0.01, points=[t])
    assert result.expected[t] == pytest.approx(harmonic_baseline(counts, t, years=7, window=2).means[-1])
    assert result.expected[t] != pytest.approx(harmonic_baseline(counts, t, years=5, window=2).means[-1])


def test_ten_years_of_baseline_estimate_the_two_week_mean_more_precisely_than_five():
    counts, _ = _seasonal_series(13, weeks=12 * 52)
    t = len(counts) - 1
    ten, five = harmonic_baseline(counts, t, window=2), harmonic_baseline(counts, t, years=5, window=2)

    def relative_variance(base):  # of the fitted two-week total
        return base.means @ base.cov @ base.means / base.means.sum() ** 2

    assert relative_variance(ten) < 0.6 * relative_variance(five)


def test_harmonic_window_needs_five_years_of_history():
    counts, _ = _seasonal_series(3, weeks=5 * 52 + 10)
    assert harmonic_window(counts, alpha=0.01).assessed()[0] == 5 * 52
    with pytest.raises(ValueError):
        harmonic_window(counts, alpha=0.01, points=[5 * 52 - 1])


def test_the_default_is_the_two_week_harmonic_test():
    assert DEFAULT_METHOD == "harmonic-window2"
