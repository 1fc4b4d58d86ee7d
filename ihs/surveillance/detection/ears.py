"""EARS C1, C2 and C3 (Hutwagner et al. 2003, J Urban Health 80:i89-i96).

C1 and C2 compare a count with the mean and standard deviation of the `baseline` (7) counts
before it, C2 after a guard band of two points; C3 sums the excess of the C2 statistics over 1
on the point and the two before it. C1 and C2 reproduce R `surveillance::earsC` exactly (upper
bound mean + z(1-alpha) * sd, alarm when the count exceeds it). C3 follows the published
definition, C3_t = sum over i = 0..2 of max(0, C2_{t-i} - 1) with an alarm when C3_t > z(1-alpha);
`surveillance` 1.20 tests the two earlier points only, which this module does not copy.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ihs.surveillance.detection.result import Detection, as_counts, default_range

GUARD = {"C1": 0, "C2": 2, "C3": 2}


def _reference(counts: np.ndarray, t: int, baseline: int, guard: int) -> tuple[float, float]:
    window = counts[t - guard - baseline:t - guard]
    return float(window.mean()), float(window.std(ddof=1))


def ears(series, method: str = "C1", *, alpha: float | None = None, baseline: int = 7, min_sigma: float = 0.0,
         points=None) -> Detection:
    """Run EARS `method` ('C1', 'C2', 'C3') over the series; alpha defaults as in R (0.001, C3 0.025)."""
    method = method.upper()
    if method not in GUARD:
        raise ValueError(f"unknown EARS method {method!r}; use C1, C2 or C3")
    if baseline < 3:
        raise ValueError("the baseline needs at least 3 points")
    counts = as_counts(series)
    alpha = alpha if alpha is not None else (0.025 if method == "C3" else 0.001)
    z = float(norm.ppf(1 - alpha))
    guard = GUARD[method]
    first = baseline + guard + (2 if method == "C3" else 0)
    result = Detection.empty(f"ears-{method.lower()}", counts)
    for t in default_range(len(counts), first, points):
        mean, sd = _reference(counts, t, baseline, guard)
        sigma = max(sd, min_sigma)
        result.expected[t] = mean
        if method != "C3":
            result.upperbound[t] = mean + z * sigma
            result.alarm[t] = counts[t] > result.upperbound[t]
            continue
        lagged = sum(max(0.0, _c2(counts, s, baseline, min_sigma) - 1) for s in (t - 2, t - 1))
        today = max(0.0, _standardised(counts[t], mean, sigma) - 1)
        result.upperbound[t] = max(0.0, mean + sigma * (1 + z - lagged)) if sigma > 0 else mean
        result.alarm[t] = today + lagged > z
    return result


def _c2(counts: np.ndarray, t: int, baseline: int, min_sigma: float) -> float:
    mean, sd = _reference(counts, t, baseline, 2)
    return _standardised(counts[t], mean, max(sd, min_sigma))


def _standardised(count: float, mean: float, sigma: float) -> float:
    if sigma > 0:
        return (count - mean) / sigma
    return 0.0 if count == mean else float(np.copysign(np.inf, count - mean))
