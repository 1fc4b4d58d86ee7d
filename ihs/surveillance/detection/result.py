"""What every detector returns: per time point, the expected count, the upper bound and the alarm."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    """Arrays as long as the series; NaN (bounds) and False (alarms) where a point was not assessed.

    `upperbound` is the threshold of the point's count: an alarm means the count crossed it
    (for the CUSUM and EWMA, the count that would have carried the statistic over its limit).
    """

    method: str
    observed: np.ndarray
    expected: np.ndarray
    upperbound: np.ndarray
    alarm: np.ndarray

    @classmethod
    def empty(cls, method: str, observed) -> "Detection":
        observed = np.asarray(observed, dtype=float)
        nan = np.full(len(observed), np.nan)
        return cls(method, observed, nan.copy(), nan, np.zeros(len(observed), dtype=bool))

    def assessed(self) -> np.ndarray:
        """Indices of the points the method could assess (enough history)."""
        return np.flatnonzero(~np.isnan(self.expected) | ~np.isnan(self.upperbound))


def as_counts(series) -> np.ndarray:
    counts = np.asarray(series, dtype=float)
    if counts.ndim != 1 or np.any(counts < 0) or np.any(np.isnan(counts)):
        raise ValueError("a series is a sequence of non-negative counts")
    return counts


def default_range(n: int, first: int, points) -> range | list[int]:
    """The points to assess: those given (0-based), else every point from `first` on."""
    if points is None:
        return range(first, n)
    points = sorted(points)
    if points and (points[0] < first or points[-1] >= n):
        raise ValueError(f"points must lie in {first}..{n - 1}: earlier points lack history")
    return points
