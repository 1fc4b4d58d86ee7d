"""The detectors against R `surveillance` (Debian r-cran-surveillance) on the same fixed series.

Runs Rscript on series drawn here with a fixed seed (negative binomial counts with trend, yearly
seasonality and injected outbreaks) and compares the upper bounds and alarms point by point.
Skips when Rscript or the surveillance package is not installed.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from ihs.surveillance.detection import ears, farrington, farrington_flexible
from ihs.surveillance.detection.farrington import NOUFAILY

WEEKS = 6 * 52 + 20
CURRENT = list(range(WEEKS - 49, WEEKS))


def _r_available() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript is not installed (apt-get install r-cran-surveillance)"
    check = subprocess.run(["Rscript", "-e", "suppressMessages(library(surveillance))"], capture_output=True)
    return None if check.returncode == 0 else "the R package surveillance is not installed (r-cran-surveillance)"


pytestmark = pytest.mark.skipif(_r_available() is not None, reason=str(_r_available()))


def _series(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(1, WEEKS + 1)
    mu = np.exp(1.5 + 0.002 * t + 0.6 * np.cos(2 * np.pi * t / 52) + 0.4 * np.sin(2 * np.pi * t / 52))
    counts = rng.negative_binomial(mu, 0.5)  # variance 2 mu
    counts[200:203] += 20
    counts[WEEKS - 5:WEEKS - 2] += 15
    return counts.astype(float)


R_SCRIPT = """
suppressMessages(library(surveillance))
y <- c(%(series)s)
s <- sts(observed = y, frequency = 52)
range <- %(first)d:%(last)d
show <- function(name, r) cat(paste(name, paste(format(as.vector(r@upperbound), digits = 17), collapse = ","),
                                    paste(as.integer(as.vector(r@alarm)), collapse = ","), sep = "\t"), "\n", sep = "")
for (m in c("C1", "C2")) show(m, earsC(s, control = list(method = m, alpha = 0.01)))
show("farrington", farrington(s, control = list(b = 5, w = 3, alpha = 0.01, range = range)))
show("flexible", farringtonFlexible(s, control = list(b = 5, w = 3, alpha = 0.01, range = range,
  glmWarnings = FALSE)))
show("noufaily", farringtonFlexible(s, control = list(b = 5, w = 3, alpha = 0.01, range = range, noPeriods = 10,
  pastWeeksNotIncluded = 26, weightsThreshold = 2.58, thresholdMethod = "nbPlugin", glmWarnings = FALSE)))
"""


@pytest.fixture(scope="module", params=[7, 42])
def case(request, tmp_path_factory):
    counts = _series(request.param)
    script = tmp_path_factory.mktemp("r") / "crosscheck.R"
    script.write_text(R_SCRIPT % {"series": ",".join(str(int(c)) for c in counts), "first": CURRENT[0] + 1,
                                  "last": CURRENT[-1] + 1})
    ran = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    results = {}
    for line in ran.stdout.strip().splitlines():
        fields = line.strip().split("\t")
        if len(fields) != 3:
            continue  # anything R printed besides the results
        name, upper, alarm = fields
        results[name] = {"upper": [float("nan") if v.strip() == "NA" else float(v) for v in upper.split(",")],
                         "alarm": [v == "1" for v in alarm.split(",")]}
    return counts, results


def _compare(python, r_result, points):
    np.testing.assert_allclose(python.upperbound[points], r_result["upper"], rtol=1e-7, equal_nan=True)
    assert python.alarm[points].tolist() == r_result["alarm"]
    return sum(r_result["alarm"])


@pytest.mark.parametrize("method,first", [("C1", 7), ("C2", 9)])
def test_ears_matches_r(case, method, first):
    counts, r = case
    _compare(ears(counts, method, alpha=0.01), r[method], list(range(first, WEEKS)))


def test_original_farrington_matches_r(case):
    counts, r = case
    _compare(farrington(counts, alpha=0.01, points=CURRENT), r["farrington"], CURRENT)


def test_farrington_flexible_matches_r(case):
    counts, r = case
    _compare(farrington_flexible(counts, alpha=0.01, points=CURRENT), r["flexible"], CURRENT)


def test_noufaily_matches_r(case):
    counts, r = case
    _compare(farrington_flexible(counts, alpha=0.01, points=CURRENT, **NOUFAILY), r["noufaily"], CURRENT)


def test_the_fixed_series_make_both_methods_alarm(case):
    counts, r = case
    assert sum(r["farrington"]["alarm"]) > 0 and sum(r["C2"]["alarm"]) > 0
