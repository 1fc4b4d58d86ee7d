"""The Farrington algorithm (Farrington et al. 1996, JRSS A 159:547-563) and its improved form
(Noufaily et al. 2013, Stat Med 32:1206-1222), as R `surveillance` implements them.

`farrington` is `surveillance::algo.farrington` (reference values in windows of 2w+1 points
around the same point of the b previous years, quasi-Poisson fit with a linear trend kept only
when significant, reweighting of past outbreaks by Anscombe residuals over 1, 2/3-power
prediction interval with the two-sided z(1 - alpha/2)). `farrington_flexible` is
`surveillance::farringtonFlexible`: all the b years of data in `no_periods` seasonal blocks, the
latest `past_weeks_not_included` points left out, reweighting over `weights_threshold`, and the
threshold by the 2/3-power interval ('delta'), or the negative binomial quantile of the predicted
mean ('nbPlugin') or of its upper 1 - alpha confidence limit ('muan'). Noufaily's recommended
settings are `NOUFAILY`. Indices are 0-based; the model's time variable is 1-based as in R.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import nbinom, norm, poisson

from ihs.surveillance.detection import glm
from ihs.surveillance.detection.result import Detection, as_counts, default_range

NOUFAILY = {"no_periods": 10, "past_weeks_not_included": 26, "weights_threshold": 2.58,
            "threshold_method": "nbPlugin"}


@dataclass
class Baseline:
    """The model at one point: predicted mean (and its link-scale form), dispersion, trend used."""

    mu: float
    se_mu: float
    eta: float
    se_eta: float
    phi: float
    trend: bool


def farrington(series, *, freq: int = 52, b: int = 5, w: int = 3, alpha: float = 0.05, reweight: bool = True,
               trend: bool = True, limit54: tuple[int, int] = (5, 4), powertrans: str = "2/3",
               points=None) -> Detection:
    """The original Farrington algorithm (`algo.farrington`), assessing `points` (default: all it can)."""
    counts = as_counts(series)
    result = Detection.empty("farrington", counts)
    for t in default_range(len(counts), max(freq * b - w - 1, 0), points):
        reference = [i for year in range(b, 0, -1) for i in range(t - freq * year - w, t - freq * year + w + 1) if i >= 0]
        response = counts[reference]
        wtime = np.asarray(reference, dtype=float) + 1
        model = _fit(response, wtime, None, trend, reweight, 1.0)
        if "wtime" in model.names:
            mu_hat, _ = model.predict_response(_row(model, t + 1))
            if not (b >= 3 and model.p_value("wtime") < 0.05 and mu_hat <= response.max()):
                model = _fit(response, wtime, None, False, reweight, 1.0)
        phi = max(model.dispersion, 1.0)
        mu0, se_mu0 = model.predict_response(_row(model, t + 1), dispersion=phi)
        upper = _power_upper(mu0, se_mu0, phi, float(norm.ppf(1 - alpha / 2)), powertrans)
        enough = counts[t - limit54[1] + 1:t + 1].sum() >= limit54[0]
        result.expected[t] = mu0
        result.upperbound[t] = upper if enough else 0.0
        result.alarm[t] = bool(enough and _score(counts[t], mu0, upper) > 1)
    return result


def farrington_flexible(series, *, freq: int = 52, b: int = 5, w: int = 3, alpha: float = 0.05,
                        reweight: bool = True, weights_threshold: float = 2.58, trend: bool = True,
                        p_threshold_trend: float = 0.05, limit54: tuple[int, int] = (5, 4), powertrans: str = "2/3",
                        no_periods: int = 1, past_weeks_not_included: int | None = None,
                        threshold_method: str = "delta", points=None, method: str = "farrington-flexible") -> Detection:
    """`farringtonFlexible`; with **NOUFAILY this is the improved algorithm of Noufaily et al."""
    if threshold_method not in ("delta", "nbPlugin", "muan"):
        raise ValueError("threshold_method is one of delta, nbPlugin, muan")
    counts = as_counts(series)
    past = w if past_weeks_not_included is None else past_weeks_not_included
    result = Detection.empty(method, counts)
    for t in default_range(len(counts), freq * b + w, points):
        base = baseline_at(counts, t, freq=freq, b=b, w=w, reweight=reweight, weights_threshold=weights_threshold,
                           trend=trend, p_threshold_trend=p_threshold_trend, no_periods=no_periods,
                           past_weeks_not_included=past)
        if base is None:
            continue
        if threshold_method == "delta":
            upper = _power_upper(base.mu, base.se_mu, base.phi, float(norm.ppf(1 - alpha)), powertrans)
            fit_value = base.mu
        else:
            upper = negative_binomial_upper(base, alpha, threshold_method)
            fit_value = base.eta  # surveillance scores against the link-scale prediction here
        enough = counts[t - limit54[1] + 1:t + 1].sum() >= limit54[0]
        result.expected[t] = base.mu
        if enough:
            result.upperbound[t] = upper
            result.alarm[t] = bool(np.isfinite(upper) and _score(counts[t], fit_value, upper) > 1 and counts[t] != 0)
    return result


def noufaily_window(series, *, alpha: float = 0.01, window: int = 2, freq: int = 52, b: int = 5, w: int = 3,
                    limit54: tuple[int, int] = (5, 4), points=None) -> Detection:
    """Noufaily's baseline tested on the sum of the last `window` counts.

    An outbreak's cases spread over two or three weeks (in Noufaily's design half of them fall
    after the first week), so a one-week test sees only part of the excess. The model fitted at t
    (which leaves out the last 26 points, so none of the window) predicts each point of the
    window; the sum of negative binomial counts with the common dispersion phi is negative
    binomial with the summed mean M, and the alarm is raised when the window's sum exceeds the
    1 - alpha quantile of a negative binomial with mean M and variance (phi + M se^2) M, where
    se is the standard error of the fitted log mean: the noise plus the uncertainty of M, as
    Farrington's threshold adds se^2/mu to phi. Noufaily's rules apply: at least limit54[0]
    cases in the last limit54[1] points and a non-zero count at t. The upper bound reported is
    the count at t that would cross it, given the counts before t in the window.
    """
    counts = as_counts(series)
    result = Detection.empty(f"noufaily-window{window}", counts)
    settings = {k: v for k, v in NOUFAILY.items() if k != "threshold_method"}
    for t in default_range(len(counts), freq * b + w, points):
        base = baseline_at(counts, t, freq=freq, b=b, w=w, **settings)
        if base is None:
            continue
        mean = float(np.exp(base.eta))
        result.expected[t] = mean
        if counts[t - limit54[1] + 1:t + 1].sum() < limit54[0]:
            continue
        # the predictive spread: NB noise plus the uncertainty of the fitted mean (cf. Farrington's tau)
        spread = base.phi + window * mean * base.se_eta ** 2
        total = quantile(window * mean, spread, 1 - alpha)
        result.upperbound[t] = total - counts[t - window + 1:t].sum()
        result.alarm[t] = bool(counts[t] > result.upperbound[t] and counts[t] != 0)
    return result


def baseline_at(counts: np.ndarray, t: int, *, freq: int, b: int, w: int, reweight: bool = True,
                weights_threshold: float = 2.58, trend: bool = True, p_threshold_trend: float = 0.05,
                no_periods: int = 1, past_weeks_not_included: int = 3) -> Baseline | None:
    """The farringtonFlexible model's prediction for point t, or None when the fit fails."""
    blocks = seasonal_blocks(len(counts), t, freq=freq, b=b, w=w, no_periods=no_periods)
    blocks[max(t - past_weeks_not_included, 0):t + 1] = 0
    index = np.flatnonzero(blocks)
    response = counts[index]
    groups = blocks[index] if no_periods != 1 else None
    wtime = index.astype(float) + 1
    model = _fit(response, wtime, groups, trend, reweight, weights_threshold, strict=True)
    if model is None:
        return None
    row = _row(model, t + 1, no_periods)
    did_trend = False
    if "wtime" in model.names:
        mu_hat, _ = model.predict_response(row)
        p_value = model.p_value("wtime", dispersion=_flexible_dispersion(model, reweight))
        did_trend = b >= 3 and p_value < p_threshold_trend and mu_hat <= response.max()
        if not did_trend:
            model = _fit(response, wtime, groups, False, reweight, weights_threshold, strict=True)
            if model is None:
                return None
            row = _row(model, t + 1, no_periods)
    phi = max(model.dispersion, 1.0)
    # surveillance passes phi inside newdata, so predict.glm scales by summary.glm's dispersion
    scale = _flexible_dispersion(model, reweight)
    eta, se_eta = model.predict(row, dispersion=scale)
    mu, se_mu = model.predict_response(row, dispersion=scale)
    return Baseline(mu, se_mu, eta, se_eta, phi, bool(did_trend))


def _flexible_dispersion(model: glm.QuasiPoissonFit, reweight: bool) -> float:
    """The dispersion summary.glm reports for farringtonFlexible's fit.

    After reweighting, surveillance stores the prior weights in the fit's `weights`, where
    summary.glm expects the working weights; its trend test and prediction standard error use
    that figure, and so does this module, so that alarms match R's.
    """
    return model.prior_weighted_dispersion if reweight else model.dispersion


def seasonal_blocks(n: int, t: int, *, freq: int, b: int, w: int, no_periods: int) -> np.ndarray:
    """surveillance's `blocks`: per point its seasonal group 1..no_periods (0 = not used).

    The windows of 2w+1 points around t and around the same point of each of the b years
    before form group `no_periods`; the stretches between consecutive windows are cut into
    no_periods - 1 blocks numbered from 1, the first `rest` of them one point longer.
    """
    if t - freq * b - w < 0:
        raise ValueError(f"point {t} has fewer than {b} years of history")
    groups = np.zeros(n, dtype=int)
    groups[t - w:t + 1] = no_periods
    for year in range(1, b + 1):
        reference = t - freq * year
        groups[reference - w:reference + w + 1] = no_periods
        if no_periods == 1:
            continue
        period = freq - 2 * w - 1
        if period < no_periods - (2 * w + 1):
            raise ValueError("too many seasonal periods for this window")
        lengths = [period // (no_periods - 1)] * (no_periods - 1)
        for j in range(period % (no_periods - 1)):
            lengths[j] += 1
        start = reference + w + 1
        for label, length in enumerate(lengths, 1):
            groups[start:start + length] = label
            start += length
    return groups


def negative_binomial_upper(base: Baseline, alpha: float, method: str = "nbPlugin") -> float:
    """Noufaily's threshold: the 1 - alpha quantile of NB(mean, variance phi * mean)."""
    mean = np.exp(base.eta) if method == "nbPlugin" else np.exp(norm.ppf(1 - alpha, base.eta, base.se_eta))
    return quantile(float(mean), base.phi, 1 - alpha)


def quantile(mean: float, phi: float, level: float) -> float:
    """The `level` quantile of the count with this mean and variance phi * mean (Poisson when phi is 1)."""
    if not np.isfinite(mean):
        return float("nan")
    if phi > 1:
        return float(nbinom.ppf(level, mean / (phi - 1), 1 / phi))
    return float(poisson.ppf(level, mean))


def _power_upper(mu0: float, se_mu0: float, phi: float, z: float, powertrans: str) -> float:
    tau = phi + se_mu0 ** 2 / mu0
    exponent, se = {
        "none": (1.0, np.sqrt(mu0 * tau)),
        "1/2": (0.5, np.sqrt(tau / 4)),
        "2/3": (2 / 3, np.sqrt(4 / 9 * mu0 ** (1 / 3) * tau)),
    }[powertrans]
    return float((mu0 ** exponent + z * se) ** (1 / exponent))


def _score(count: float, fit_value: float, upper: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(count - fit_value, upper - fit_value))


def _design(wtime: np.ndarray, groups: np.ndarray | None, trend: bool) -> tuple[np.ndarray, list[str], list[int]]:
    columns, names = [np.ones_like(wtime)], ["intercept"]
    if trend:
        columns.append(wtime)
        names.append("wtime")
    levels = sorted(set(groups.tolist())) if groups is not None else []
    for level in levels[1:]:  # R's treatment contrasts: the lowest level is the reference
        columns.append((groups == level).astype(float))
        names.append(f"season{level}")
    return np.column_stack(columns), names, levels


def _row(model: glm.QuasiPoissonFit, wtime: float, group: int | None = None) -> np.ndarray:
    row = np.zeros(len(model.names))
    row[0] = 1.0
    for i, name in enumerate(model.names):
        if name == "wtime":
            row[i] = wtime
        elif name == f"season{group}":
            row[i] = 1.0
    return row


def _fit(response, wtime, groups, trend: bool, reweight: bool, threshold: float, *, strict: bool = False):
    """Fit, fall back to no trend when the trend fit does not converge, then reweight once."""
    x, names, _ = _design(wtime, groups, trend)
    model = glm.fit(x, response, names)
    if not model.converged and trend:
        x, names, _ = _design(wtime, groups, False)
        model = glm.fit(x, response, names)
    if not model.converged and strict:
        return None
    if reweight:
        phi = max(model.dispersion, 1.0)
        weights = outbreak_weights(glm.anscombe_residuals(model, phi), threshold)
        model = glm.fit(x, response, names, weights)
    return model


def outbreak_weights(residuals: np.ndarray, threshold: float) -> np.ndarray:
    """Down-weight points whose residual exceeds the threshold by s^-2, keeping the mean weight 1."""
    high = residuals > threshold
    raw = np.ones_like(residuals)
    raw[high] = residuals[high] ** -2.0
    return raw * (len(residuals) / raw.sum())
