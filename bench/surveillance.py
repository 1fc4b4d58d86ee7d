"""Outbreak detection in the simulation design of Noufaily et al. (2013, Stat Med 32:1206-1222).

Weekly counts over 624 weeks from a negative binomial with mean
mu(t) = exp(theta + beta t + sum_{j<=m} gamma1 cos(2 pi j t / 52) + gamma2 sin(2 pi j t / 52))
and variance phi mu(t), for the paper's 42 scenarios (seven parameter sets, m = 0, 1, 2, with
and without trend). Four outbreaks (k = 2, 3, 5, 10) start at random in the five years before
the last 49 weeks and one (k = 1..10 in turn) in those 49 weeks; an outbreak has Poisson(k sd)
cases, sd = sqrt(phi mu) at its start, spread over the following weeks by a lognormal(0, 0.5)
delay. Every method runs at alpha = 0.01 on the last 49 weeks: the false positive rate is the
share of those weeks with an alarm in the series without the current outbreak (weeks that a past
outbreak reaches are left out), the probability of detection the share of current outbreaks with
an alarm in a week that has outbreak cases.

The last line, `known-model-window2`, is a reference rather than a detector: the two-week test
against the simulation's own mean and dispersion (alarm when the two-week sum exceeds the
negative binomial 1 - alpha quantile of the true sum), what a test of recent sums reaches with a
perfect baseline.

    .venv/bin/python bench/surveillance.py              # 42 scenarios x 10 replicates, seed 2013
    .venv/bin/python bench/surveillance.py --replicates 20 --seed 7

`--methods harmonic-window2,harmonic-window2-5y` compares the default with its five-year form.

Seed 2013 with 10 replicates is the recorded run (docs/benchmarks.md); choose a method's settings
on other seeds, so that the recorded figures measure it rather than fit it.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from ihs.surveillance.detection import DEFAULT_METHOD, METHODS
from ihs.surveillance.detection.farrington import quantile
from ihs.surveillance.detection.harmonic import harmonic_window

WEEKS = 624
CURRENT = 49
ALPHA = 0.01
# theta, beta, gamma1, gamma2, phi of the paper's seven parameter sets
PARAMETER_SETS = [(0.1, 0.0025, 0.6, 0.6, 1.5), (-2.0, 0.005, 0.1, 0.3, 2.0), (1.5, 0.003, 0.2, -0.4, 1.0),
                  (0.5, 0.002, 0.5, 0.5, 5.0), (2.5, 0.001, 1.0, 0.1, 3.0), (3.75, 0.001, 0.1, -0.1, 1.1),
                  (5.0, 0.0001, 0.05, 0.01, 1.2)]
BASELINE_OUTBREAKS = (2, 3, 5, 10)
CHARTS = {"cusum", "ewma"}  # methods whose alarm at t depends on their statistic before t
KNOWN_MODEL = "known-model-window2"
# Variants for comparison only, run when --methods names them: the default on Noufaily's five years
COMPARISONS = {"harmonic-window2-5y": partial(harmonic_window, years=5)}


@dataclass(frozen=True)
class Scenario:
    theta: float
    beta: float
    gamma1: float
    gamma2: float
    phi: float
    m: int

    def mean(self) -> np.ndarray:
        t = np.arange(1, WEEKS + 1)
        linear = self.theta + self.beta * t
        for j in range(1, self.m + 1):
            linear = linear + self.gamma1 * np.cos(2 * np.pi * j * t / 52) + self.gamma2 * np.sin(2 * np.pi * j * t / 52)
        return np.exp(linear)


def scenarios() -> list[Scenario]:
    return [Scenario(theta, beta if trend else 0.0, gamma1 if m else 0.0, gamma2 if m else 0.0, phi, m)
            for theta, beta, gamma1, gamma2, phi in PARAMETER_SETS for trend in (0, 1) for m in (0, 1, 2)]


def baseline(rng: np.random.Generator, scenario: Scenario, mu: np.ndarray) -> np.ndarray:
    if scenario.phi == 1:
        return rng.poisson(mu).astype(float)
    return rng.negative_binomial(mu / (scenario.phi - 1), 1 / scenario.phi).astype(float)


def outbreak(rng: np.random.Generator, start: int, k: float, sd: float) -> np.ndarray:
    """Outbreak cases per week from `start` on (the array may run past the series' end)."""
    cases = rng.poisson(k * sd)
    delays = np.floor(rng.lognormal(0.0, 0.5, size=cases)).astype(int)
    weeks = np.zeros(WEEKS + 20)
    np.add.at(weeks, start + delays, 1)
    return weeks[:WEEKS]


def simulate(rng: np.random.Generator, scenario: Scenario, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series without the current outbreak, its past outbreaks' cases, the current outbreak's cases)."""
    mu = scenario.mean()
    sd = np.sqrt(scenario.phi * mu)
    counts = baseline(rng, scenario, mu)
    first_current = WEEKS - CURRENT
    past = np.zeros(WEEKS)
    for size, start in zip(BASELINE_OUTBREAKS, rng.choice(np.arange(first_current - 260, first_current), 4, replace=False)):
        past += outbreak(rng, start, size, sd[start])
    start = int(rng.integers(first_current, WEEKS))
    current = outbreak(rng, start, k, sd[start])
    current[:first_current] = 0
    return counts + past, past, current


def known_model_alarms(counts: np.ndarray, scenario: Scenario, points: list[int]) -> np.ndarray:
    """The two-week test against the true mean and dispersion: the reference for estimated baselines."""
    mu = scenario.mean()
    alarm = np.zeros(WEEKS, dtype=bool)
    for t in points:
        alarm[t] = counts[t - 1:t + 1].sum() > quantile(float(mu[t - 1:t + 1].sum()), scenario.phi, 1 - ALPHA)
    return alarm


def evaluate(methods: list[str], replicates: int, seed: int) -> dict[str, tuple[float, float, float]]:
    """Per method, then for the known-model reference: (false positive rate, probability of detection, seconds)."""
    rng = np.random.default_rng(seed)
    detectors = {**METHODS, **COMPARISONS}
    points = list(range(WEEKS - CURRENT, WEEKS))
    names = methods + [KNOWN_MODEL]
    false_alarms = {m: 0 for m in names}
    detected = {m: 0 for m in names}
    seconds = {m: 0.0 for m in names}
    weeks = outbreaks = 0
    for number, scenario in enumerate(scenarios()):
        for replicate in range(replicates):
            k = 1 + (number * replicates + replicate) % 10  # every size equally often over the scenarios
            counts, past, current = simulate(rng, scenario, k)
            quiet_weeks = [t for t in points if past[t] == 0]  # a past outbreak may run into the last weeks
            weeks += len(quiet_weeks)
            outbreak_weeks = [t for t in points if current[t] > 0]
            outbreaks += bool(outbreak_weeks)
            for name in methods:
                started = time.perf_counter()
                quiet = detectors[name](counts, alpha=ALPHA, points=points)
                false_alarms[name] += int(quiet.alarm[quiet_weeks].sum())
                if outbreak_weeks:
                    # only alarms in outbreak weeks count; the charts carry state from the first week on
                    assessed = range(points[0], outbreak_weeks[-1] + 1) if name in CHARTS else outbreak_weeks
                    loud = detectors[name](counts + current, alpha=ALPHA, points=list(assessed))
                    detected[name] += bool(loud.alarm[outbreak_weeks].any())
                seconds[name] += time.perf_counter() - started
            started = time.perf_counter()
            false_alarms[KNOWN_MODEL] += int(known_model_alarms(counts, scenario, quiet_weeks).sum())
            if outbreak_weeks:
                detected[KNOWN_MODEL] += bool(known_model_alarms(counts + current, scenario, outbreak_weeks).any())
            seconds[KNOWN_MODEL] += time.perf_counter() - started
    return {m: (false_alarms[m] / weeks, detected[m] / max(outbreaks, 1), seconds[m]) for m in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10, help="series per scenario (default 10)")
    parser.add_argument("--seed", type=int, default=2013)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated method names (also: {', '.join(COMPARISONS)})")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(f"# {len(scenarios())} scenarios x {args.replicates} replicates, alpha {ALPHA}, seed {args.seed}")
    for name, (fpr, pod, seconds) in evaluate(methods, args.replicates, args.seed).items():
        mark = " default" if name == DEFAULT_METHOD else " reference" if name == KNOWN_MODEL else ""
        print(f"{name} FPR {100 * fpr:.2f}% POD {100 * pod:.1f}%{mark}  ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
