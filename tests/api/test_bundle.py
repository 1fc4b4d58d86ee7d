"""batch and transaction Bundles, written from https://hl7.org/fhir/R4/http.html#transaction."""
from __future__ import annotations

import tarfile

import orjson
import pytest

from tests.shared_data import shared_file

PATIENT_URN = "urn:uuid:6f1c2a5e-0000-4000-8000-000000000001"


def _entry(resource, method="POST", url=None, full_url=None, **request):
    entry = {"resource": resource, "request": {"method": method, "url": url or resource["resourceType"], **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _transaction(*entries, kind="transaction"):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_transaction_rewrites_urn_uuid_references(client):
    bundle = _transaction(
        _entry({"resourceType": "Observation", "status": "final", "code": {"text": "BP"},
                "subject": {"reference": PATIENT_URN}}),
        _entry({"resourceType": "Patient", "gender": "male"}, full_url=PATIENT_URN),
    )
    response = client.post("/", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert response.json()["type"] == "transaction-response"
    assert [e["response"]["status"] for e in entries] == ["201 Created", "201 Created"]
    patient_location = entries[1]["response"]["location"]
    observation = client.get("/" + entries[0]["response"]["location"].split("/_history")[0]).json()
    assert observation["subject"]["reference"] == patient_location.split("/_history")[0]


def test_transaction_is_atomic_and_names_the_failed_entry(client):
    bundle = _transaction(
        _entry({"resourceType": "Patient", "gender": "male"}),
        _entry({"resourceType": "Patient", "gender": "robot"}),
    )
    response = client.post("/", json=bundle)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert "Bundle.entry[1]" in issue["diagnostics"]
    assert issue["expression"] == ["Bundle.entry[1].resource.gender"]
    assert client.get("/_history").json()["total"] == 0


def test_transaction_processes_delete_before_post_before_put(client):
    existing = client.post("/Patient", json={"resourceType": "Patient"}).json()
    bundle = _transaction(
        _entry({"resourceType": "Patient", "id": "p-put", "active": True}, "PUT", "Patient/p-put"),
        _entry({"resourceType": "Patient", "active": False}),
        {"request": {"method": "DELETE", "url": f"Patient/{existing['id']}"}},
    )
    response = client.post("/", json=bundle)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["201 Created", "201 Created", "204 No Content"]
    assert client.get(f"/Patient/{existing['id']}").status_code == 410


def test_transaction_resolves_conditional_references(client):
    org = {"resourceType": "Organization", "name": "城东社区卫生服务中心",
           "identifier": [{"system": "urn:ihs:org", "value": "CHC-01"}]}
    assert client.post("/Organization", json=org).status_code == 201
    bundle = _transaction(_entry({"resourceType": "Patient",
                                  "managingOrganization": {"reference": "Organization?identifier=urn:ihs:org|CHC-01"}}))
    response = client.post("/", json=bundle)
    assert response.status_code == 200, response.text
    location = response.json()["entry"][0]["response"]["location"].split("/_history")[0]
    reference = client.get(f"/{location}").json()["managingOrganization"]["reference"]
    assert reference.startswith("Organization/") and "?" not in reference


def test_unresolvable_conditional_reference_fails_the_transaction(client):
    bundle = _transaction(_entry({"resourceType": "Patient",
                                  "managingOrganization": {"reference": "Organization?identifier=urn:x|missing"}}))
    response = client.post("/", json=bundle)
    assert response.status_code == 404
    assert client.get("/_history").json()["total"] == 0


def test_if_none_exist_in_transaction_reuses_existing(client):
    org = {"resourceType": "Organization", "identifier": [{"system": "urn:ihs:org", "value": "H-1"}]}
    first = client.post("/", json=_transaction(_entry(org, ifNoneExist="identifier=urn:ihs:org|H-1"))).json()
    second = client.post("/", json=_transaction(_entry(org, ifNoneExist="identifier=urn:ihs:org|H-1"))).json()
    assert first["entry"][0]["response"]["status"] == "201 Created"
    assert second["entry"][0]["response"]["status"] == "200 OK"
    assert first["entry"][0]["response"]["location"] == second["entry"][0]["response"]["location"]


def test_batch_entries_succeed_or_fail_on_their_own(client):
    bundle = _transaction(
        _entry({"resourceType": "Patient", "gender": "male"}),
        _entry({"resourceType": "Patient", "gender": "robot"}),
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        kind="batch")
    response = client.post("/", json=bundle)
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert response.json()["type"] == "batch-response"
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"].startswith("400")
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entries[2]["response"]["status"].startswith("404")
    assert client.get("/Patient/_history").json()["total"] == 1


def test_transaction_read_entry_returns_resource(client):
    created = client.post("/Patient", json={"resourceType": "Patient"}).json()
    bundle = _transaction({"request": {"method": "GET", "url": f"Patient/{created['id']}"}})
    entry = client.post("/", json=bundle).json()["entry"][0]
    assert entry["resource"]["id"] == created["id"]


def test_bundle_must_be_batch_or_transaction(client):
    response = client.post("/", json={"resourceType": "Bundle", "type": "collection"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.type"]


def _bundles(archive_name: str, order=()):
    path = shared_file(archive_name)
    with tarfile.open(path) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(".json")]
        rank = lambda m: next((i for i, prefix in enumerate(order) if prefix in m.name), len(order))
        for member in sorted(members, key=lambda m: (rank(m), m.name)):
            yield member.name, orjson.loads(archive.extractfile(member).read())


@pytest.mark.parametrize("archive,order", [
    ("synthea-r4-bulk-data-server-100p.tar.gz", ("hospitalInformation", "practitionerInformation")),
    ("synthea-r4-fhir-data-pipes-hiv-79p.tar.gz", ("hospitalInformation", "practitionerInformation")),
])
def test_synthea_sets_load_through_post_with_zero_errors(client, archive, order):
    stored = 0
    for name, bundle in _bundles(archive, order):
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch"):
            continue
        response = client.post("/", json=bundle)
        assert response.status_code == 200, f"{name}: {response.text[:2000]}"
        for index, entry in enumerate(response.json()["entry"]):
            assert entry["response"]["status"][:1] == "2", f"{name} entry {index}: {entry['response']}"
        stored += len(bundle["entry"])
    assert stored > 38000
