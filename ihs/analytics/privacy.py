"""Differentially private counts over a view, released through OpenDP.

`release(query, resources)` counts the patients in each cell of `group_by` over a view's rows,
with the patient as the unit of privacy: the patient is found from the resource itself (the
Patient compartment), never from a column the caller names, and each patient counts in at most
`contributions` cells. The counts are released with OpenDP's threshold mechanisms (discrete
Laplace, or discrete Gaussian under zero-concentrated DP converted to (epsilon, delta)): noise
is added to every cell present and only cells whose noisy count reaches the threshold are
released, which both protects the presence of a rare cell (the delta) and suppresses small cells
(the threshold is at least `min_count`). The noise scale and threshold are calibrated so the
release costs at most the (epsilon, delta) asked for; ihs/analytics/budget.py charges it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import opendp.prelude as dp
import orjson

from ihs.analytics.compartment import patient_compartment_types, patients_of
from ihs.analytics.viewdef import View, compile_view
from ihs.fhir.errors import FhirError

dp.enable_features("contrib")

MECHANISMS = ("laplace", "gaussian")
MAX_EPSILON = 10.0
MAX_DELTA = 1e-3


@dataclass
class AggregateQuery:
    """A count of patients per cell of `group_by` (columns of `view`), released with (epsilon, delta)-DP."""

    view: dict
    group_by: list[str]
    epsilon: float
    delta: float = 1e-6
    mechanism: str = "laplace"
    min_count: int = 10
    contributions: int = 1

    def compiled(self) -> View:
        """The view, after checking the query; FhirError naming what is wrong."""
        view = compile_view(self.view)
        if view.resource not in patient_compartment_types():
            raise FhirError(f"{view.resource} holds no patient data to protect; count it without noise",
                            expression="view")
        columns = {c.name: c for c in view.columns}
        unknown = [g for g in self.group_by if g not in columns]
        if unknown or not self.group_by:
            raise FhirError(f"groupBy names view columns ({', '.join(columns)}); unknown: {', '.join(unknown)}",
                            expression="groupBy")
        if any(columns[g].collection for g in self.group_by):
            raise FhirError("groupBy columns must not be collections", expression="groupBy")
        if not 0 < self.epsilon <= MAX_EPSILON:
            raise FhirError(f"epsilon must be in (0, {MAX_EPSILON}]", expression="epsilon")
        if not 0 < self.delta <= MAX_DELTA:
            raise FhirError(f"delta must be in (0, {MAX_DELTA}]", expression="delta")
        if self.mechanism not in MECHANISMS:
            raise FhirError(f"mechanism is one of {', '.join(MECHANISMS)}", expression="mechanism")
        if not 1 <= self.contributions <= 10 or self.min_count < 1:
            raise FhirError("contributions is 1 to 10 and minCount at least 1", expression="contributions")
        return view


@dataclass
class Release:
    rows: list[dict]  # the released cells: the group_by values and "count"
    epsilon: float  # the privacy actually spent
    delta: float
    scale: float
    threshold: int


def patient_cells(view: View, resources: Iterable[dict], group_by: list[str], contributions: int) -> dict[str, int]:
    """True patient counts per cell (JSON-encoded group values); each patient in at most `contributions` cells."""
    positions = [view.column_names.index(g) for g in group_by]
    cells_of: dict[str, list[str]] = {}
    for resource in resources:
        patients = sorted(patients_of(resource))
        if not patients:
            continue
        cells = cells_of.setdefault(patients[0], [])
        for row in view.rows(resource):
            if len(cells) >= contributions:
                break
            cell = orjson.dumps([row[p] for p in positions]).decode()
            if cell not in cells:
                cells.append(cell)
    counts: dict[str, int] = {}
    for cells in cells_of.values():
        for cell in cells:
            counts[cell] = counts.get(cell, 0) + 1
    return counts


def _domain():
    return dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))


def _make(mechanism: str, scale: float, threshold: int):
    if mechanism == "laplace":
        return dp.m.make_laplace_threshold(_domain(), dp.l01inf_distance(dp.absolute_distance(T=int)),
                                           scale=scale, threshold=threshold)
    return dp.c.make_zCDP_to_approxDP(dp.m.make_gaussian_threshold(
        _domain(), dp.l02inf_distance(dp.absolute_distance(T=int)), scale=scale, threshold=threshold))


def _loss(query: AggregateQuery, scale: float, threshold: int) -> tuple[float, float]:
    """(epsilon, delta) the release costs for one patient's contribution."""
    k = query.contributions
    if query.mechanism == "laplace":
        return tuple(_make("laplace", scale, threshold).map((k, k, 1)))
    profile, threshold_delta = _make("gaussian", scale, threshold).map((k, math.ceil(math.sqrt(k)), 1))
    return profile.epsilon(query.delta / 2), threshold_delta + query.delta / 2


def calibrate(query: AggregateQuery) -> tuple[float, int]:
    """The smallest noise scale meeting epsilon, then the smallest threshold (>= min_count) meeting delta."""
    probe = max(query.min_count, 1)
    low, high = 1e-3, 1e6
    for _ in range(80):
        middle = math.sqrt(low * high)
        low, high = (low, middle) if _loss(query, middle, 10**9)[0] <= query.epsilon else (middle, high)
    scale = high
    threshold = probe
    while _loss(query, scale, threshold)[1] > query.delta:
        threshold *= 2
    low_t, high_t = max(probe, threshold // 2), threshold
    while low_t < high_t:
        middle = (low_t + high_t) // 2
        if _loss(query, scale, middle)[1] <= query.delta:
            high_t = middle
        else:
            low_t = middle + 1
    return scale, high_t


def cost(query: AggregateQuery) -> tuple[float, float]:
    """The (epsilon, delta) a release of `query` spends, at its calibrated noise and threshold."""
    return _loss(query, *calibrate(query))


def release(query: AggregateQuery, resources: Iterable[dict]) -> Release:
    """Noisy patient counts per cell; cells under the threshold are not released."""
    view = query.compiled()
    counts = patient_cells(view, resources, query.group_by, query.contributions)
    scale, threshold = calibrate(query)
    noisy = _make(query.mechanism, scale, threshold)(counts)
    rows = [dict(zip(query.group_by, orjson.loads(cell)), count=count) for cell, count in noisy.items()]
    rows.sort(key=lambda r: (-r["count"], orjson.dumps([r[g] for g in query.group_by])))
    epsilon, delta = _loss(query, scale, threshold)
    return Release(rows, epsilon, delta, scale, threshold)
