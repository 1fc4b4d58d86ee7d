"""Two-week outbreak test against a harmonic regression baseline: the default detector.

The baseline is the regression of Serfling (1963, Public Health Rep 78:494-506) fitted the way
Noufaily et al. (2013, Stat Med 32:1206-1222) fit theirs: a quasi-Poisson log-linear model of
the counts with a linear trend (kept only when significant at 5%) and `harmonics` yearly
sine/cosine pairs, fitted to up to `years` (10) years before the point, at least `min_years`
(5), but not the latest `excluded` points (so a current outbreak stays out of its own baseline),
with past outbreaks down-weighted once by their Anscombe residuals over 2.58, as Noufaily
recommends. Noufaily fits five years; ten, when a series has them, about halve the variance of
the fitted means, whose uncertainty otherwise widens the threshold and lets estimation errors
through as false alarms.

The test is on the sum of the last `window` counts: an outbreak's cases arrive over two or three
weeks (in Noufaily's simulation half of them after the first week), so a two-week sum sees nearly
all of the excess where a one-week test sees half. The sum of counts with variance phi * mean is
approximately negative binomial with the summed mean M; the fitted means are uncertain, so the
threshold is the 1 - alpha quantile of a negative binomial with mean M and variance
(phi + Var(M) / M) M, Var(M) from the fit's covariance by the delta method (as Farrington's
threshold adds the prediction variance to phi). An alarm needs the sum above that threshold
and the latest count above its own expected value, so a past week's excess alone does not
raise it again. The upper bound reported for t is the count at t that would raise the alarm,
given the counts before t in the window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ihs.surveillance.detection import glm
from ihs.surveillance.detection.farrington import outbreak_weights, quantile
from ihs.surveillance.detection.result import Detection, as_counts, default_range

REWEIGHT_THRESHOLD = 2.58  # Noufaily et al.'s threshold for down-weighting past outbreaks
TREND_LEVEL = 0.05


@dataclass
class HarmonicBaseline:
    """The model's prediction for the points t - window + 1 .. t."""

    means: np.ndarray  # expected counts
    cov: np.ndarray  # covariance of their log means (the fit's uncertainty)
    phi: float  # dispersion: variance over mean, at least 1
    trend: bool

    def sum_threshold(self, alpha: float) -> tuple[float, float]:
        """(expected sum of the window, the sum's 1 - alpha quantile with the fit's uncertainty)."""
        total = float(self.means.sum())
        if total <= 0:
            return total, 0.0
        variance_of_total = float(self.means @ self.cov @ self.means)
        return total, quantile(total, self.phi + variance_of_total / total, 1 - alpha)


def harmonic_window(series, *, alpha: float = 0.01, window: int = 2, freq: int = 52, years: int = 10,
                    min_years: int = 5, excluded: int = 26, harmonics: int = 2, points=None) -> Detection:
    """The two-week (`window`) test on the harmonic baseline, assessing `points` (default: all it can).

    A point needs `min_years` years of history; the baseline uses up to `years` of them.
    """
    counts = as_counts(series)
    result = Detection.empty(f"harmonic-window{window}", counts)
    for t in default_range(len(counts), freq * min_years, points):
        base = harmonic_baseline(counts, t, freq=freq, years=years, excluded=excluded, harmonics=harmonics,
                                 window=window)
        if base is None:
            continue
        expected = float(base.means[-1])
        _, threshold = base.sum_threshold(alpha)
        result.expected[t] = expected
        result.upperbound[t] = max(threshold - counts[t - window + 1:t].sum(), expected)
        result.alarm[t] = bool(counts[t] > result.upperbound[t])
    return result


def harmonic_baseline(counts: np.ndarray, t: int, *, freq: int = 52, years: int = 10, excluded: int = 26,
                      harmonics: int = 2, window: int = 1) -> HarmonicBaseline | None:
    """The prediction for the `window` points ending at t from the model fitted to the `years` years
    before t (all of them if fewer); None when the fit fails."""
    if t - excluded <= freq:
        raise ValueError(f"point {t} has less than a year of history before the {excluded} points left out")
    fitted = np.arange(max(0, t - freq * years), t - excluded)
    time = fitted.astype(float) + 1
    response = counts[fitted]
    model, trend = _fit(response, time, freq, harmonics, trend=True), True
    if model is not None:
        phi = max(model.dispersion, 1.0)
        trend = model.p_value("wtime", dispersion=phi) < TREND_LEVEL
    if model is None or not trend:
        model, trend = _fit(response, time, freq, harmonics, trend=False), False
        if model is None:
            return None
    phi = max(model.dispersion, 1.0)
    rows = design(np.arange(t - window + 1, t + 1, dtype=float) + 1, freq, harmonics, trend)
    eta = rows @ model.coef
    return HarmonicBaseline(np.exp(eta), phi * rows @ model.unscaled_cov @ rows.T, phi, trend)


def design(time: np.ndarray, freq: int, harmonics: int, trend: bool) -> np.ndarray:
    """Intercept, the linear trend (time is 1-based) and the yearly harmonics."""
    columns = [np.ones_like(time)] + ([time] if trend else [])
    for j in range(1, harmonics + 1):
        angle = 2 * np.pi * j * time / freq
        columns += [np.cos(angle), np.sin(angle)]
    return np.column_stack(columns)


def _fit(response: np.ndarray, time: np.ndarray, freq: int, harmonics: int, *, trend: bool):
    """Fit, then refit once with past outbreaks down-weighted; None when either fit fails."""
    x = design(time, freq, harmonics, trend)
    names = ["intercept"] + (["wtime"] if trend else []) + \
        [f"{f}{j}" for j in range(1, harmonics + 1) for f in ("cos", "sin")]
    model = glm.fit(x, response, names)
    if not model.converged:
        return None
    residuals = glm.anscombe_residuals(model, max(model.dispersion, 1.0))
    model = glm.fit(x, response, names, outbreak_weights(residuals, REWEIGHT_THRESHOLD))
    return model if model.converged else None
