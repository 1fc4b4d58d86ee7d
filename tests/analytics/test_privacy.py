"""Differentially private counts: calibration, the patient as the unit, suppression, budgets enforced."""
from __future__ import annotations

import pytest

from ihs.analytics import budget
from ihs.analytics.budget import BudgetExhausted, charge
from ihs.analytics.privacy import AggregateQuery, calibrate, cost, patient_cells, release
from ihs.fhir.errors import FhirError

CONDITIONS = {"resourceType": "ViewDefinition", "resource": "Condition",
              "select": [{"column": [{"name": "code", "path": "code.coding.code.first()"}]}]}


def _condition(patient: str, code: str) -> dict:
    return {"resourceType": "Condition", "id": f"{patient}-{code}", "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]}}


def _query(**overrides) -> AggregateQuery:
    return AggregateQuery(**{"view": CONDITIONS, "group_by": ["code"], "epsilon": 1.0, **overrides})


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize("contributions", [1, 3])
def test_calibration_spends_no_more_than_asked(mechanism, contributions):
    query = _query(mechanism=mechanism, contributions=contributions, epsilon=0.5, delta=1e-6, min_count=5)
    scale, threshold = calibrate(query)
    epsilon, delta = cost(query)
    assert epsilon <= 0.5 + 1e-9 and delta <= 1e-6 and threshold >= 5
    assert epsilon > 0.45  # and not much less: no noise wasted


def test_a_patient_counts_once_per_cell_and_in_few_cells():
    resources = [_condition("p1", "J06.9"), dict(_condition("p1", "J06.9"), id="again"), _condition("p1", "I10"),
                 _condition("p2", "J06.9"), {"resourceType": "Condition", "id": "nobody", "code": {"text": "x"}}]
    view = _query().compiled()
    assert patient_cells(view, resources, ["code"], 1) == {'["J06.9"]': 2}
    assert patient_cells(view, resources, ["code"], 2) == {'["J06.9"]': 2, '["I10"]': 1}


def test_large_cells_are_released_near_their_count_and_small_ones_suppressed():
    resources = [_condition(f"p{i}", "J06.9") for i in range(400)] + [_condition(f"q{i}", "A00.0") for i in range(2)]
    result = release(_query(epsilon=1.0, min_count=10), resources)
    assert [r["code"] for r in result.rows] == ["J06.9"]
    assert abs(result.rows[0]["count"] - 400) < 40  # scale 1: a deviation of 40 has probability ~e^-40


def test_bad_queries_are_refused_before_any_data_is_read():
    with pytest.raises(FhirError, match="groupBy"):
        _query(group_by=["nope"]).compiled()
    with pytest.raises(FhirError, match="epsilon"):
        _query(epsilon=0).compiled()
    with pytest.raises(FhirError, match="no patient data"):
        _query(view={"resource": "Organization", "select": [{"column": [{"name": "n", "path": "name"}]}]},
               group_by=["n"]).compiled()


def test_budgets_are_charged_per_user_and_per_dataset_and_enforced(store, monkeypatch):
    monkeypatch.setattr(budget, "USER_LIMITS", (1.0, 1e-5))
    monkeypatch.setattr(budget, "DATASET_LIMITS", (1.5, 1e-4))
    ledgers = charge(store, "dr-wang", "Condition", 0.6, 1e-6)
    assert ledgers["user"].remaining()["epsilon"] == 0.4 and ledgers["dataset"].remaining()["epsilon"] == 0.9
    with pytest.raises(BudgetExhausted, match="dr-wang"):
        charge(store, "dr-wang", "Condition", 0.6, 1e-6)
    charge(store, "dr-wang", "Observation", 0.6, 1e-6)  # another dataset has its own budget
    charge(store, "dr-li", "Condition", 0.6, 1e-6)
    with pytest.raises(BudgetExhausted, match="all users"):
        charge(store, "dr-zhao", "Condition", 0.6, 1e-6)
    with store.session() as uow:
        assert budget.ledger(uow, "dr-wang", "Condition").epsilon_spent == pytest.approx(0.6)
