"""The REST interactions on one resource, written from https://hl7.org/fhir/R4/http.html."""
from __future__ import annotations

import orjson

PATIENT = {"resourceType": "Patient", "gender": "female", "birthDate": "1956-03-14",
           "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "110101195603140026"}],
           "name": [{"family": "王", "given": ["秀英"]}]}


def create_patient(client, **changes):
    response = client.post("/Patient", json={**PATIENT, **changes})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_assigns_id_version_and_location(client):
    response = client.post("/Patient", json={**PATIENT, "id": "ignored-by-server"})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "ignored-by-server"
    assert body["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"http://testserver/Patient/{body['id']}/_history/1"
    assert "Last-Modified" in response.headers


def test_read_returns_what_was_created(client):
    created = create_patient(client)
    response = client.get(f"/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json() == created


def test_update_makes_version_two_and_vread_keeps_version_one(client):
    created = create_patient(client)
    response = client.put(f"/Patient/{created['id']}", json={**created, "gender": "male"})
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert client.get(f"/Patient/{created['id']}/_history/1").json()["gender"] == "female"
    assert client.get(f"/Patient/{created['id']}/_history/2").json()["gender"] == "male"
    assert client.get(f"/Patient/{created['id']}/_history/3").status_code == 404


def test_update_with_client_id_creates(client):
    response = client.put("/Patient/zhang-san", json={**PATIENT, "id": "zhang-san"})
    assert response.status_code == 201
    assert client.get("/Patient/zhang-san").status_code == 200


def test_update_id_must_match_url(client):
    response = client.put("/Patient/a", json={**PATIENT, "id": "b"})
    assert response.status_code == 400
    assert client.get("/Patient/a").status_code == 404


def test_if_match_mismatch_is_412_and_changes_nothing(client):
    created = create_patient(client)
    response = client.put(f"/Patient/{created['id']}", json={**created, "gender": "male"},
                          headers={"If-Match": 'W/"7"'})
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/Patient/{created['id']}").json()["gender"] == "female"
    ok = client.put(f"/Patient/{created['id']}", json={**created, "gender": "male"}, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200


def test_delete_then_read_is_410_and_history_shows_deletion(client):
    created = create_patient(client)
    assert client.delete(f"/Patient/{created['id']}").status_code == 204
    response = client.get(f"/Patient/{created['id']}")
    assert response.status_code == 410
    assert response.json()["issue"][0]["code"] == "deleted"
    history = client.get(f"/Patient/{created['id']}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert client.delete(f"/Patient/{created['id']}").status_code == 204


def test_read_unknown_id_is_404_and_unknown_type_is_404(client):
    assert client.get("/Patient/nope").status_code == 404
    response = client.get("/Patientt/1")
    assert response.status_code == 404
    assert "Patientt" in response.json()["issue"][0]["diagnostics"]


def test_invalid_resource_is_400_naming_the_element_and_stores_nothing(client):
    response = client.post("/Patient", json={"resourceType": "Patient", "gender": "robot"})
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Patient.gender"]
    assert client.get("/Patient/_history").json()["total"] == 0
    assert client.get("/Patient/_history", headers={"Authorization": ""}).status_code == 401


def test_malformed_json_is_400(client):
    response = client.post("/Patient", content=b'{"resourceType": "Patient",')
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_wrong_resource_type_for_url_is_400(client):
    assert client.post("/Observation", json=PATIENT).status_code == 400


def test_unsupported_media_type_is_415(client):
    response = client.post("/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 415


def test_body_too_large_is_413(client, monkeypatch):
    from ihs.api import http

    monkeypatch.setattr(http, "MAX_BODY", 100)
    response = client.post("/Patient", json={**PATIENT, "text": {"status": "generated", "div": "x" * 200}})
    assert response.status_code == 413


def test_method_not_allowed_is_405(client):
    response = client.post("/Patient/123")
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"


def test_conditional_delete_without_criteria_is_422(client):
    assert client.delete("/Patient").status_code == 422


def test_prefer_return_minimal_and_operation_outcome(client):
    minimal = client.post("/Patient", json=PATIENT, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["Location"]
    outcome = client.post("/Patient", json=PATIENT, headers={"Prefer": "return=OperationOutcome"})
    assert outcome.json()["resourceType"] == "OperationOutcome"


def test_conditional_create_finds_existing(client):
    created = create_patient(client)
    criteria = "identifier=urn:oid:2.16.156.10011.1.1|110101195603140026"
    again = client.post("/Patient", json=PATIENT, headers={"If-None-Exist": criteria})
    assert again.status_code == 200
    assert again.json()["id"] == created["id"]
    other = client.post("/Patient", json=PATIENT, headers={"If-None-Exist": "identifier=urn:x|other"})
    assert other.status_code == 201


def test_conditional_create_with_two_matches_is_412(client):
    create_patient(client)
    create_patient(client)
    response = client.post("/Patient", json=PATIENT, headers={"If-None-Exist": "identifier=110101195603140026"})
    assert response.status_code == 412


def test_conditional_update_and_delete_by_identifier(client):
    created = create_patient(client)
    query = "identifier=urn:oid:2.16.156.10011.1.1|110101195603140026"
    updated = client.put(f"/Patient?{query}", json={**PATIENT, "gender": "male"})
    assert updated.status_code == 200 and updated.json()["id"] == created["id"]
    fresh = client.put("/Patient?identifier=urn:x|new", json={**PATIENT, "identifier": [{"system": "urn:x",
                                                                                          "value": "new"}]})
    assert fresh.status_code == 201
    assert client.delete(f"/Patient?{query}").status_code == 204
    assert client.get(f"/Patient/{created['id']}").status_code == 410


def test_patch_with_json_patch(client):
    created = create_patient(client)
    ops = [{"op": "replace", "path": "/gender", "value": "male"}, {"op": "add", "path": "/active", "value": True}]
    response = client.patch(f"/Patient/{created['id']}", content=orjson.dumps(ops),
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200, response.text
    assert response.json()["gender"] == "male" and response.json()["active"] is True
    assert response.json()["meta"]["versionId"] == "2"


def test_patch_producing_invalid_resource_is_400_and_changes_nothing(client):
    created = create_patient(client)
    ops = [{"op": "replace", "path": "/gender", "value": "robot"}]
    response = client.patch(f"/Patient/{created['id']}", content=orjson.dumps(ops),
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 400
    assert client.get(f"/Patient/{created['id']}").json()["gender"] == "female"


def test_patch_with_fhir_patch(client):
    created = create_patient(client)
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.birthDate"},
        {"name": "value", "valueDate": "1956-03-15"}]}]}
    response = client.patch(f"/Patient/{created['id']}", json=parameters)
    assert response.status_code == 200, response.text
    assert response.json()["birthDate"] == "1956-03-15"


def test_history_type_and_system_with_since_and_count(client):
    first = create_patient(client)
    client.post("/Observation", json={"resourceType": "Observation", "status": "final", "code": {"text": "BP"}})
    client.put(f"/Patient/{first['id']}", json={**first, "active": True})
    assert client.get("/Patient/_history").json()["total"] == 2
    # AuditEvents of these very requests are part of the system's history too.
    clinical = lambda bundle: [e for e in bundle["entry"] if e["fullUrl"].split("/")[-2] != "AuditEvent"]
    everything = client.get("/_history?_count=1000").json()
    assert len(clinical(everything)) == 3
    system = client.get("/_history?_count=2").json()
    assert system["total"] >= 3 and len(system["entry"]) == 2
    assert any(link["relation"] == "next" for link in system["link"])
    since = client.get("/_history", params={"_since": first["meta"]["lastUpdated"], "_count": 1000}).json()
    assert len(clinical(since)) == 3
    assert client.get("/_history?_since=yesterday").status_code == 400


def test_read_with_if_none_match_is_304(client):
    created = create_patient(client)
    response = client.get(f"/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304


def test_metadata_is_a_truthful_capability_statement(client):
    statement = client.get("/metadata").json()
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"read", "vread", "update", "patch", "delete", "create"} <= {i["code"] for i in patient["interaction"]}
    assert "identifier" in {p["name"] for p in patient["searchParam"]}


def test_healthz_and_metrics(client):
    assert client.get("/healthz").json()["status"] == "ok"
    create_patient(client)
    metrics = client.get("/metrics").text
    assert 'ihs_http_requests_total{interaction="create",status="201"}' in metrics
    assert "ihs_http_request_seconds_bucket" in metrics
    assert "ihs_db_pool_connections" in metrics


def test_every_response_carries_a_request_id(client):
    response = client.get("/metadata", headers={"X-Request-Id": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
