"""Quasi-Poisson log-linear regression fitted as R's `glm.fit` does (IRLS), for the Farrington methods.

Only what the Farrington family needs: coefficients, the Pearson dispersion, hat values, the
Wald t-test of one coefficient and predictions with standard errors on the link or the
response scale. Matching R here is what lets the detectors reproduce `surveillance` exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MAX_ITERATIONS = 25  # glm.control() defaults
EPSILON = 1e-8


@dataclass
class QuasiPoissonFit:
    """A fitted model: `names` label the columns of the design matrix."""

    names: list[str]
    x: np.ndarray
    y: np.ndarray
    prior_weights: np.ndarray
    coef: np.ndarray
    mu: np.ndarray
    working_weights: np.ndarray  # the weights of the last least-squares step, as R keeps them
    unscaled_cov: np.ndarray  # (X'WX)^-1 with those weights
    converged: bool

    @property
    def df_residual(self) -> int:
        return int(np.count_nonzero(self.prior_weights > 0)) - self.x.shape[1]

    @property
    def dispersion(self) -> float:
        """Pearson chi-square over the residual degrees of freedom (summary.glm for quasi families)."""
        if self.df_residual <= 0:
            return float("nan")
        pearson = self.working_weights * ((self.y - self.mu) / self.mu) ** 2
        return float(pearson.sum() / self.df_residual)

    @property
    def prior_weighted_dispersion(self) -> float:
        """Prior weights times squared working residuals over the residual degrees of freedom.

        What summary.glm computes once a fit's `weights` (the working weights) have been
        replaced by its prior weights, as surveillance's farringtonFlexible does.
        """
        if self.df_residual <= 0:
            return float("nan")
        return float(np.sum(self.prior_weights * ((self.y - self.mu) / self.mu) ** 2) / self.df_residual)

    def hat_values(self) -> np.ndarray:
        root = np.sqrt(self.working_weights)[:, None] * self.x
        return np.einsum("ij,jk,ik->i", root, self.unscaled_cov, root)

    def p_value(self, name: str, *, dispersion: float | None = None) -> float:
        """Two-sided p-value of the t-test that coefficient `name` is zero."""
        i = self.names.index(name)
        scale = self.dispersion if dispersion is None else dispersion
        se = np.sqrt(scale * self.unscaled_cov[i, i])
        return float(2 * stats.t.sf(abs(self.coef[i] / se), self.df_residual))

    def predict(self, row: np.ndarray, *, dispersion: float | None = None) -> tuple[float, float]:
        """(eta, standard error of eta) at one design row; the fit's own dispersion unless given."""
        scale = self.dispersion if dispersion is None else dispersion
        eta = float(row @ self.coef)
        return eta, float(np.sqrt(scale * row @ self.unscaled_cov @ row))

    def predict_response(self, row: np.ndarray, *, dispersion: float | None = None) -> tuple[float, float]:
        """(mu, standard error of mu) by the delta method, as predict.glm(type='response')."""
        eta, se = self.predict(row, dispersion=dispersion)
        mu = float(np.exp(eta))
        return mu, se * mu


def fit(x: np.ndarray, y: np.ndarray, names: list[str], weights: np.ndarray | None = None) -> QuasiPoissonFit:
    """Fit log E[y] = x b by iteratively reweighted least squares, started and stopped as R does."""
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    eta = np.log(y + 0.1)  # poisson()$initialize: mustart = y + 0.1
    mu = np.exp(eta)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        coef, mu, working, converged = _irls(x, y, w, eta, mu)
    information = (x * working[:, None]).T @ x
    return QuasiPoissonFit(names, x, y, w, coef, mu, working, np.linalg.pinv(information),
                           bool(converged and np.all(np.isfinite(coef))))


def _irls(x, y, w, eta, mu):
    """IRLS until the deviance settles (R's relative criterion); the last step's weights come back too."""
    deviance_old = _deviance(y, mu, w)
    coef = np.zeros(x.shape[1])
    working = w * mu
    converged = False
    for _ in range(MAX_ITERATIONS):
        z = eta + (y - mu) / mu
        working = w * mu
        if not (np.all(np.isfinite(z)) and np.all(working > 0)):
            break  # the mean underflowed: a diverging fit, reported as not converged
        weighted = x * working[:, None]
        try:
            coef = np.linalg.solve(weighted.T @ x, weighted.T @ z)
        except np.linalg.LinAlgError:
            break  # a singular design: no unique fit

        eta = x @ coef
        mu = np.exp(eta)
        deviance = _deviance(y, mu, w)
        if abs(deviance - deviance_old) / (abs(deviance) + 0.1) < EPSILON:
            converged = True
            break
        deviance_old = deviance
    return coef, mu, working, converged


def anscombe_residuals(model: QuasiPoissonFit, phi: float) -> np.ndarray:
    """Standardised Anscombe residuals (Farrington et al. 1996, eq. 2)."""
    y, mu = model.y, model.mu
    a = 1.5 * (y ** (2 / 3) * mu ** (-1 / 6) - np.sqrt(mu))
    return a / np.sqrt(phi * (1 - model.hat_values()))


def _deviance(y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2 * np.sum(w * (term - (y - mu))))
