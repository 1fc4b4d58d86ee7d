"""Control charts on counts standardised against a moving baseline: CUSUM and EWMA.

Both standardise the count at t with the mean and standard deviation of the `baseline` points
that end `guard` points before t (the guard band keeps a rising outbreak out of its own
baseline), as EARS C2 and ESSENCE do.

- CUSUM: Page's one-sided upper CUSUM of the standardised counts, S_t = max(0, S_{t-1} + z_t - k),
  restarted at 0 after an alarm (the adaptive CUSUM of Fricker, Hegler & Dunfee 2008, Stat Med
  27:3407-3429). The decision limit h is the one whose in-control average run length is 1/alpha
  by Siegmund's approximation ARL = (exp(2kb) - 2kb - 1) / (2k^2), b = h + 1.166, so that alpha is
  again the expected share of false alarms.
- EWMA: E_t = lambda y_t + (1 - lambda) E_{t-1}, alarm when E_t exceeds the baseline mean by
  z(1-alpha) asymptotic EWMA standard deviations, sd * sqrt(lambda / (2 - lambda)) (Roberts 1959;
  lambda 0.4 and a two-point guard band as in ESSENCE's EWMA, Burkom 2005).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from ihs.surveillance.detection.result import Detection, as_counts, default_range

SIEGMUND_CORRECTION = 1.166


def cusum_limit(alpha: float, k: float = 0.5) -> float:
    """The decision limit h whose in-control ARL is 1/alpha (Siegmund's approximation)."""
    def arl(h: float) -> float:
        b = h + SIEGMUND_CORRECTION
        return (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)

    return float(brentq(lambda h: arl(h) - 1 / alpha, 0.0, 100.0))


def _baseline(counts: np.ndarray, t: int, baseline: int, guard: int, min_sigma: float) -> tuple[float, float]:
    window = counts[t - guard - baseline:t - guard]
    return float(window.mean()), max(float(window.std(ddof=1)), min_sigma)


def cusum(series, *, alpha: float = 0.01, k: float = 0.5, baseline: int = 28, guard: int = 2,
          min_sigma: float = 0.5, points=None) -> Detection:
    """Adaptive upper CUSUM; `min_sigma` keeps a flat baseline from making every count an alarm."""
    counts = as_counts(series)
    h = cusum_limit(alpha, k)
    result = Detection.empty("cusum", counts)
    statistic = 0.0
    previous = None
    for t in default_range(len(counts), baseline + guard, points):
        if previous is not None and t != previous + 1:
            statistic = 0.0  # a gap in the assessed points restarts the chart
        mean, sigma = _baseline(counts, t, baseline, guard, min_sigma)
        result.expected[t] = mean
        result.upperbound[t] = mean + sigma * (h + k - statistic)
        statistic = max(0.0, statistic + (counts[t] - mean) / sigma - k)
        result.alarm[t] = statistic > h
        if result.alarm[t]:
            statistic = 0.0
        previous = t
    return result


def ewma(series, *, alpha: float = 0.01, smoothing: float = 0.4, baseline: int = 28, guard: int = 2,
         min_sigma: float = 0.5, points=None) -> Detection:
    """EWMA chart with a moving baseline; the smoothed value starts at the first baseline mean."""
    counts = as_counts(series)
    z = float(norm.ppf(1 - alpha))
    spread = math.sqrt(smoothing / (2 - smoothing))
    result = Detection.empty("ewma", counts)
    smoothed = None
    for t in default_range(len(counts), baseline + guard, points):
        mean, sigma = _baseline(counts, t, baseline, guard, min_sigma)
        if smoothed is None:
            smoothed = mean
        limit = mean + z * sigma * spread
        result.expected[t] = mean
        result.upperbound[t] = (limit - (1 - smoothing) * smoothed) / smoothing
        smoothed = smoothing * counts[t] + (1 - smoothing) * smoothed
        result.alarm[t] = smoothed > limit
    return result
