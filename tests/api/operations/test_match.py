"""POST Patient/$match: candidates from the master patient index, scored and graded."""
from __future__ import annotations

import pytest

from ihs.mpi.idnumber import RESIDENT_ID_SYSTEM
from ihs.mpi.match import MATCH_GRADE

ADDRESS = [{"line": ["爱山街道", "人民路12号"], "district": "吴兴区", "city": "湖州市", "postalCode": "313000"}]


@pytest.fixture(autouse=True)
def _fresh_index(store):
    from ihs.mpi.index import forget

    forget(store)


def patient(**fields) -> dict:
    resource = {"resourceType": "Patient", "name": [{"family": "李", "given": ["建国"]}], "gender": "male",
                "birthDate": "1956-03-08", "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": "330502195603080017"}],
                "address": ADDRESS}
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def parameters(resource: dict, **options) -> dict:
    params = [{"name": "resource", "resource": resource}]
    if "only_certain" in options:
        params.append({"name": "onlyCertainMatches", "valueBoolean": options["only_certain"]})
    if "count" in options:
        params.append({"name": "count", "valueInteger": options["count"]})
    return {"resourceType": "Parameters", "parameter": params}


def test_match_answers_candidates_by_score_with_grades(client):
    same = {client.post("/Patient", json=patient()).json()["id"] for _ in range(2)}
    client.post("/Patient", json=patient(birthDate="1956-03-18", identifier=None, address=None,
                                         name=[{"family": "Li", "given": ["Jiangguo"]}]))
    client.post("/Patient", json=patient(name=[{"family": "陈", "given": ["秀英"]}], gender="female",
                                         birthDate="1971-10-02", identifier=None, address=None))
    response = client.post("/Patient/$match", json=parameters(patient()))
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    scores = [e["search"]["score"] for e in bundle["entry"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    grades = [e["search"]["extension"][0] for e in bundle["entry"]]
    assert all(g["url"] == MATCH_GRADE for g in grades)
    assert grades[0]["valueCode"] == "certain" and {e["resource"]["id"] for e in bundle["entry"][:2]} == same
    assert "probable" in {g["valueCode"] for g in grades}
    assert all(e["resource"]["name"][0]["family"] != "陈" for e in bundle["entry"])


def test_only_certain_matches_and_count(client):
    for _ in range(3):
        client.post("/Patient", json=patient())
    client.post("/Patient", json=patient(birthDate="1956-03-18", identifier=None, address=None,
                                         name=[{"family": "Li", "given": ["Jiangguo"]}]))
    certain = client.post("/Patient/$match", json=parameters(patient(), only_certain=True)).json()
    assert {e["search"]["extension"][0]["valueCode"] for e in certain["entry"]} == {"certain"}
    one = client.post("/Patient/$match", json=parameters(patient(), count=1)).json()
    assert len(one["entry"]) == 1 and one["total"] == 1


def test_no_match_is_an_empty_bundle(client):
    client.post("/Patient", json=patient())
    bundle = client.post("/Patient/$match", json=parameters(
        {"resourceType": "Patient", "name": [{"family": "Smith", "given": ["Anna"]}], "birthDate": "1990-01-01"})).json()
    assert bundle == {"resourceType": "Bundle", "type": "searchset", "total": 0}


def test_match_sees_patients_registered_after_the_index_was_loaded(client):
    client.post("/Patient/$match", json=parameters(patient()))
    created = client.post("/Patient", json=patient()).json()["id"]
    bundle = client.post("/Patient/$match", json=parameters(patient())).json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [created]


def test_match_rejects_a_missing_or_invalid_resource(client):
    missing = client.post("/Patient/$match", json={"resourceType": "Parameters", "parameter": []})
    assert missing.status_code == 400 and missing.json()["resourceType"] == "OperationOutcome"
    invalid = client.post("/Patient/$match", json=parameters({"resourceType": "Patient", "gender": "yes"}))
    assert invalid.status_code == 400
    assert "Patient.gender" in invalid.json()["issue"][0]["expression"][0]
    bad_count = client.post("/Patient/$match", json=parameters(patient(), count=0))
    assert bad_count.status_code == 400
