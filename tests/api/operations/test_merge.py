"""POST Patient/$merge (R5) with preview, and POST Patient/$unmerge."""
from __future__ import annotations

import pytest

from tests.api.operations.mpi_records import create, fresh_index  # noqa: F401 (autouse fixture)

MRN = "https://ihs.example.org/fhir/sid/mrn/county"




@pytest.fixture
def records(client):
    source = create(client, {"resourceType": "Patient", "name": [{"family": "Li", "given": ["Jianguo"]}],
                             "identifier": [{"system": MRN, "value": "0001"}]})
    target = create(client, {"resourceType": "Patient", "name": [{"family": "李", "given": ["建国"]}]})
    observations = [create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                                    "subject": {"reference": f"Patient/{source}"}}) for _ in range(2)]
    encounter = create(client, {"resourceType": "Encounter", "status": "finished",
                                "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{source}"}})
    return source, target, observations, encounter


def merge_parameters(source: str, target: str, *, preview: bool = False, result: dict | None = None) -> dict:
    params = [{"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
              {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}}]
    if preview:
        params.append({"name": "preview", "valueBoolean": True})
    if result:
        params.append({"name": "result-patient", "resource": result})
    return {"resourceType": "Parameters", "parameter": params}


def outputs(response) -> dict:
    return {p["name"]: p["resource"] for p in response.json()["parameter"]}


def test_preview_says_what_would_change_and_changes_nothing(client, records):
    source, target, observations, _ = records
    response = client.post("/Patient/$merge", json=merge_parameters(source, target, preview=True))
    assert response.status_code == 200
    out = outputs(response)
    assert "3 resource(s) would be re-pointed" in out["outcome"]["issue"][0]["diagnostics"]
    assert out["result"]["link"] == [{"other": {"reference": f"Patient/{source}"}, "type": "replaces"}]
    assert client.get(f"/Observation/{observations[0]}").json()["subject"]["reference"] == f"Patient/{source}"
    assert "link" not in client.get(f"/Patient/{target}").json()


def test_merge_repoints_references_retires_the_source_and_writes_provenance(client, records):
    source, target, observations, encounter = records
    response = client.post("/Patient/$merge", json=merge_parameters(source, target))
    assert response.status_code == 200, response.text
    assert outputs(response)["input"]["resourceType"] == "Parameters"
    for obs in observations:
        assert client.get(f"/Observation/{obs}").json()["subject"]["reference"] == f"Patient/{target}"
    assert client.get(f"/Encounter/{encounter}").json()["subject"]["reference"] == f"Patient/{target}"
    retired = client.get(f"/Patient/{source}").json()
    assert retired["active"] is False
    assert retired["link"] == [{"other": {"reference": f"Patient/{target}"}, "type": "replaced-by"}]
    provenance = client.get("/Provenance").json()["entry"][0]["resource"]
    assert provenance["activity"]["coding"][0]["code"] == "merge"
    assert len(provenance["target"]) == 5 and provenance["target"][0]["reference"].startswith(f"Patient/{target}/")
    again = client.post("/Patient/$merge", json=merge_parameters(source, target))
    assert again.status_code == 422


def test_unmerge_puts_back_what_the_merge_moved(client, records):
    source, target, observations, encounter = records
    client.post("/Patient/$merge", json=merge_parameters(source, target))
    later = create(client, {"resourceType": "Observation", "status": "final", "code": {"text": "height"},
                            "subject": {"reference": f"Patient/{target}"}})
    response = client.post("/Patient/$unmerge", json=merge_parameters(source, target))
    assert response.status_code == 200, response.text
    for obs in observations:
        assert client.get(f"/Observation/{obs}").json()["subject"]["reference"] == f"Patient/{source}"
    assert client.get(f"/Observation/{later}").json()["subject"]["reference"] == f"Patient/{target}"
    restored = client.get(f"/Patient/{source}").json()
    assert "active" not in restored and "link" not in restored
    assert "link" not in client.get(f"/Patient/{target}").json()
    assert client.post("/Patient/$unmerge", json=merge_parameters(source, target)).status_code == 404


def test_merge_by_identifier_and_with_a_result_patient(client, records):
    source, target, _, _ = records
    result = {"resourceType": "Patient", "id": target, "name": [{"family": "李", "given": ["建国"]}],
              "identifier": [{"system": MRN, "value": "0001"}],
              "link": [{"other": {"reference": f"Patient/{source}"}, "type": "replaces"}]}
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient-identifier", "valueIdentifier": {"system": MRN, "value": "0001"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
        {"name": "result-patient", "resource": result}]}
    response = client.post("/Patient/$merge", json=body)
    assert response.status_code == 200, response.text
    assert client.get(f"/Patient/{target}").json()["identifier"][0]["value"] == "0001"


def test_merge_errors_name_the_problem(client, records):
    source, target, _, _ = records
    same = client.post("/Patient/$merge", json=merge_parameters(source, source))
    assert same.status_code == 422
    missing = client.post("/Patient/$merge", json=merge_parameters(source, "nobody"))
    assert missing.status_code == 404
    bad_result = client.post("/Patient/$merge", json=merge_parameters(
        source, target, result={"resourceType": "Patient", "id": target}))
    assert bad_result.status_code == 422
    assert "replaces" in bad_result.json()["issue"][0]["diagnostics"]
    no_target = client.post("/Patient/$merge", json={"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}}]})
    assert no_target.status_code == 400
