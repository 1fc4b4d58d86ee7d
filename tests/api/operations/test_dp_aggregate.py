"""POST $dp-aggregate: noisy counts by view columns, charged to the caller's budget until it runs out."""
from __future__ import annotations

import pytest

from ihs.analytics import budget

VIEW = {"resourceType": "ViewDefinition", "name": "diagnoses", "resource": "Condition",
        "select": [{"column": [{"name": "code", "path": "code.coding.code.first()"}]}]}


@pytest.fixture
def diagnoses(client):
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    for i in range(60):
        patient = f"urn:uuid:00000000-0000-0000-0000-{i:012d}"
        transaction["entry"] += [
            {"fullUrl": patient, "resource": {"resourceType": "Patient", "gender": "female"},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Condition", "subject": {"reference": patient},
                          "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J06.9"}]}},
             "request": {"method": "POST", "url": "Condition"}}]
    assert client.post("/", json=transaction).status_code == 200


def test_counts_are_released_with_what_was_spent_and_what_remains(client, diagnoses):
    response = client.post("/$dp-aggregate", json={"view": VIEW, "groupBy": ["code"], "epsilon": 1.0})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dataset"] == "Condition" and body["unit"] == "patient"
    assert [r["code"] for r in body["rows"]] == ["J06.9"] and abs(body["rows"][0]["count"] - 60) < 30
    assert body["spent"]["epsilon"] <= 1.0 and body["remaining"]["user"]["epsilon"] == pytest.approx(2.0, abs=1e-6)


def test_a_stored_view_by_reference_and_the_budget_running_out(client, diagnoses, monkeypatch):
    monkeypatch.setattr(budget, "USER_LIMITS", (1.0, 1e-5))
    library = client.post("/ViewDefinition", json=VIEW).json()
    query = {"viewReference": f"Library/{library['id']}", "groupBy": ["code"], "epsilon": 0.6}
    assert client.post("/$dp-aggregate", json=query).status_code == 200
    refused = client.post("/$dp-aggregate", json=query)
    assert refused.status_code == 403 and "privacy budget" in refused.json()["issue"][0]["diagnostics"]


def test_a_bad_query_is_400_and_costs_nothing(client, diagnoses):
    response = client.post("/$dp-aggregate", json={"view": VIEW, "groupBy": ["nope"], "epsilon": 1.0})
    assert response.status_code == 400 and response.json()["issue"][0]["expression"] == ["groupBy"]
    assert client.post("/$dp-aggregate", json={"view": VIEW, "groupBy": ["code"]}).status_code == 400
