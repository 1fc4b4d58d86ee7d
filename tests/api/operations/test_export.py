"""Bulk Data $export over HTTP: kick-off, polling, manifest, files, filters, Group level, cancel."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import orjson
import pytest

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IHS_DATA_DIR", str(tmp_path / "data"))


def _create(client, resource: dict) -> dict:
    response = client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()


def _region(client) -> dict:
    """Two patients with an encounter and observations each, a practitioner, a group holding the first."""
    a = _create(client, {"resourceType": "Patient", "name": [{"family": "Wang"}], "gender": "female"})
    b = _create(client, {"resourceType": "Patient", "name": [{"family": "Li"}], "gender": "male"})
    practitioner = _create(client, {"resourceType": "Practitioner", "name": [{"family": "Zhao"}]})
    for patient, code in ((a, "8867-4"), (b, "8310-5"), (b, "8867-4")):
        _create(client, {"resourceType": "Observation", "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                         "subject": {"reference": f"Patient/{patient['id']}"}})
    _create(client, {"resourceType": "Encounter", "status": "finished",
                     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                     "subject": {"reference": f"Patient/{a['id']}"}})
    group = _create(client, {"resourceType": "Group", "type": "person", "actual": True,
                             "member": [{"entity": {"reference": f"Patient/{a['id']}"}}]})
    return {"a": a, "b": b, "practitioner": practitioner, "group": group}


def _finish(client, location: str, timeout: float = 30) -> dict:
    path = location.replace("http://testserver", "")
    deadline = time.time() + timeout
    while time.time() < deadline:
        response = client.get(path)
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 202, response.text
        assert response.headers["X-Progress"]
        time.sleep(0.05)
    raise AssertionError("the export did not finish")


def _files(client, manifest: dict) -> dict[str, list[dict]]:
    found = {}
    for item in manifest["output"]:
        response = client.get(item["url"].replace("http://testserver", ""))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in response.content.splitlines() if line]
        assert len(lines) == item["count"]
        found[item["type"]] = lines
    return found


def _kick_off(client, path: str, headers=ASYNC):
    response = client.get(path, headers=headers)
    assert response.status_code == 202, response.text
    return response.headers["Content-Location"]


def test_system_export_writes_one_ndjson_file_per_type_with_a_manifest(client):
    region = _region(client)
    manifest = _finish(client, _kick_off(client, "/$export"))
    assert manifest["transactionTime"].endswith("Z") and manifest["requiresAccessToken"] is True
    files = _files(client, manifest)
    files.pop("AuditEvent")  # the audit trail of the requests that built the region is exported too
    assert {t: len(v) for t, v in files.items()} == {"Patient": 2, "Practitioner": 1, "Observation": 3,
                                                     "Encounter": 1, "Group": 1}
    assert {p["id"] for p in files["Patient"]} == {region["a"]["id"], region["b"]["id"]}


def test_type_and_type_filter_narrow_the_export(client):
    _region(client)
    location = _kick_off(client, "/$export?_type=Observation,Patient"
                                 "&_typeFilter=Observation%3Fcode%3D8867-4")
    files = _files(client, _finish(client, location))
    assert set(files) == {"Observation", "Patient"}
    assert [o["code"]["coding"][0]["code"] for o in files["Observation"]] == ["8867-4", "8867-4"]


def test_since_exports_only_what_changed_at_or_after_it(client):
    region = _region(client)
    marker = region["group"]["meta"]["lastUpdated"]
    later = _create(client, {"resourceType": "Patient", "name": [{"family": "Sun"}]})
    files = _files(client, _finish(client, _kick_off(client, f"/$export?_since={marker}")))
    files.pop("AuditEvent", None)
    assert {r["id"] for resources in files.values() for r in resources} == {region["group"]["id"], later["id"]}


def test_since_that_is_not_an_instant_is_400(client):
    response = client.get("/$export?_since=yesterday", headers=ASYNC)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["_since"]


def test_patient_export_keeps_compartment_resources_only(client):
    _region(client)
    files = _files(client, _finish(client, _kick_off(client, "/Patient/$export")))
    assert "Practitioner" not in files  # a Group is in its members' compartments
    assert len(files["Patient"]) == 2 and len(files["Observation"]) == 3


def test_group_export_keeps_the_members_resources(client):
    region = _region(client)
    files = _files(client, _finish(client, _kick_off(client, f"/Group/{region['group']['id']}/$export")))
    assert [p["id"] for p in files["Patient"]] == [region["a"]["id"]]
    assert len(files["Observation"]) == 1 and len(files["Encounter"]) == 1


def test_kick_off_without_prefer_respond_async_is_400(client):
    response = client.get("/$export")
    assert response.status_code == 400
    assert "respond-async" in response.json()["issue"][0]["diagnostics"]


def test_unknown_type_and_output_format_are_400(client):
    assert client.get("/$export?_type=Nonsense", headers=ASYNC).status_code == 400
    assert client.get("/$export?_outputFormat=text/csv", headers=ASYNC).status_code == 400


def test_post_kick_off_with_parameters(client):
    _region(client)
    body = {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Practitioner"}]}
    response = client.post("/$export", json=body, headers=ASYNC)
    assert response.status_code == 202
    files = _files(client, _finish(client, response.headers["Content-Location"]))
    assert list(files) == ["Practitioner"]


def test_delete_cancels_and_the_status_is_then_gone(client):
    _region(client)
    location = _kick_off(client, "/$export").replace("http://testserver", "")
    assert client.delete(location).status_code == 202
    assert client.get(location).status_code == 404


def test_unknown_job_is_404(client):
    assert client.get("/$export-status/0123abcd").status_code == 404
    assert client.get("/$export-file/0123abcd/Patient.ndjson").status_code == 404


def test_deidentified_export_has_pseudonyms_and_no_names(client):
    region = _region(client)
    files = _files(client, _finish(client, _kick_off(client, "/Patient/$export?_deidentify=true")))
    patients = files["Patient"]
    assert {p["id"] for p in patients}.isdisjoint({region["a"]["id"], region["b"]["id"]})
    assert all("name" not in p for p in patients)
    pseudonyms = {p["id"] for p in patients}
    assert {o["subject"]["reference"].split("/")[1] for o in files["Observation"]} <= pseudonyms


def test_group_since_adds_newcomers_records_and_lists_deletions(client):
    region = _region(client)
    group = region["group"]
    time.sleep(0.01)
    since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(0.01)
    group["member"].append({"entity": {"reference": f"Patient/{region['b']['id']}"}})
    assert client.put(f"/Group/{group['id']}", json=group).status_code == 200
    encounters = client.get("/Encounter", params={"subject": f"Patient/{region['a']['id']}"}).json()["entry"]
    gone = encounters[0]["resource"]["id"]
    assert client.delete(f"/Encounter/{gone}").status_code in (200, 204)
    manifest = _finish(client, _kick_off(client, f"/Group/{group['id']}/$export?_since={since}"))
    files = _files(client, manifest)
    assert [p["id"] for p in files["Patient"]] == [region["b"]["id"]]  # joined after _since
    assert len(files["Observation"]) == 2  # the newcomer's, both older than _since
    [deleted] = manifest["deleted"]
    assert deleted["type"] == "Bundle" and deleted["count"] == 1
    bundle = orjson.loads(client.get(deleted["url"].replace("http://testserver", "")).content)
    assert bundle["type"] == "transaction"
    assert bundle["entry"] == [{"request": {"method": "DELETE", "url": f"Encounter/{gone}"}}]


def test_without_since_the_manifest_lists_no_deletions(client):
    _region(client)
    assert _finish(client, _kick_off(client, "/$export?_type=Patient"))["deleted"] == []


POLL_FROM_ANOTHER_PROCESS = """
import sys, time, orjson
from starlette.testclient import TestClient
from ihs.api.app import create_app
from ihs.store.store import Store
url, token, path = sys.argv[1:4]
with TestClient(create_app(Store(url), base_url="http://testserver"), raise_server_exceptions=False) as client:
    client.headers["Authorization"] = "Bearer " + token
    deadline = time.time() + 60
    response = client.get(path)
    while response.status_code == 202 and time.time() < deadline:
        time.sleep(0.05)
        response = client.get(path)
    manifest = response.json()
    files = {item["type"]: client.get(item["url"].replace("http://testserver", "")).text
             for item in manifest.get("output", [])}
    print(orjson.dumps({"status": response.status_code, "files": files}).decode())
"""


def test_a_worker_process_that_did_not_kick_off_the_export_answers_its_status_and_files(client, store, tmp_path):
    region = _region(client)
    location = _kick_off(client, "/$export?_type=Patient").replace("http://testserver", "")
    other = dict(os.environ, IHS_DATA_DIR=str(tmp_path / "another-machine"))
    url = store.engine.url.render_as_string(hide_password=False)
    token = client.headers["Authorization"].split()[1]
    ran = subprocess.run([sys.executable, "-c", POLL_FROM_ANOTHER_PROCESS, url, token, location],
                         capture_output=True, text=True, timeout=120, env=other)
    assert ran.returncode == 0, ran.stderr
    answer = orjson.loads(ran.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    assert {orjson.loads(line)["id"] for line in answer["files"]["Patient"].splitlines()} == \
        {region["a"]["id"], region["b"]["id"]}
