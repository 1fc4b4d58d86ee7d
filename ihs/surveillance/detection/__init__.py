"""Aberration detection on count series: EARS C1/C2/C3, CUSUM, EWMA, Farrington, Noufaily.

The default, `harmonic-window2` (harmonic.harmonic_window), tests two-week sums against a
regression baseline with yearly harmonics fitted as Noufaily et al. fit theirs, to up to ten years;
`noufaily-window2` tests Noufaily's own model on two-week sums (farrington.noufaily_window).
bench/surveillance.py measures every method.

Every method is a function `method(series, *, alpha, points=None, freq=52) -> Detection`
registered in METHODS by name; `points` are the (0-based) indices to assess, by default every
point with enough history. `freq` is the number of points in a year, used by the methods that
look at previous years.
"""
from __future__ import annotations

from functools import partial

from ihs.surveillance.detection.control import cusum, ewma
from ihs.surveillance.detection.ears import ears
from ihs.surveillance.detection.farrington import NOUFAILY, farrington, farrington_flexible, noufaily_window
from ihs.surveillance.detection.harmonic import harmonic_window
from ihs.surveillance.detection.result import Detection


def _ears(method: str, series, *, alpha: float, points=None, freq: int = 52) -> Detection:
    return ears(series, method, alpha=alpha, points=points)


def _control(chart, series, *, alpha: float, points=None, freq: int = 52) -> Detection:
    return chart(series, alpha=alpha, points=points)


def _farrington(series, *, alpha: float, points=None, freq: int = 52) -> Detection:
    return farrington(series, alpha=alpha, points=points, freq=freq)


def _noufaily(series, *, alpha: float, points=None, freq: int = 52) -> Detection:
    return farrington_flexible(series, alpha=alpha, points=points, freq=freq, method="noufaily", **NOUFAILY)


def _noufaily_window(series, *, alpha: float, points=None, freq: int = 52) -> Detection:
    return noufaily_window(series, alpha=alpha, points=points, freq=freq)


def _harmonic_window(series, *, alpha: float, points=None, freq: int = 52) -> Detection:
    return harmonic_window(series, alpha=alpha, points=points, freq=freq)


METHODS = {
    "ears-c1": partial(_ears, "C1"),
    "ears-c2": partial(_ears, "C2"),
    "ears-c3": partial(_ears, "C3"),
    "cusum": partial(_control, cusum),
    "ewma": partial(_control, ewma),
    "farrington": _farrington,
    "noufaily": _noufaily,
    "noufaily-window2": _noufaily_window,
    "harmonic-window2": _harmonic_window,
}
DEFAULT_METHOD = "harmonic-window2"  # the best POD at about 1% false positives (docs/benchmarks.md)

__all__ = ["Detection", "METHODS", "DEFAULT_METHOD", "cusum", "ewma", "ears", "farrington", "farrington_flexible",
           "harmonic_window"]
