"""Bulk $export obeys the access policy: every role exports exactly what its searches show, in the
files, the Group's members and the `deleted` array, and the kick-off is audited
(tests/auth/world.py's network, on both backends)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson
import pytest

from ihs.analytics.bulk import ExportRequest, export
from ihs.analytics.jobs import export_jobs
from ihs.api.operations.smart import authority_of
from ihs.api.security import audit_writer
from ihs.store.search import search
from tests.auth import world

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
CLINICAL = "Patient,Observation,Condition"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IHS_DATA_DIR", str(tmp_path / "data"))


def _headers(client, who: str) -> dict:
    principal = world.principal(who)

    class _App:  # authority_of reads the app's state only
        app = client.app
    scope = "system/*.cruds" if who in ("system", "systemA") else world.ALL
    token, _ = authority_of(_App()).access_token(
        subject=principal.subject, client_id="test-app", scope=scope, roles=principal.roles,
        organizations=principal.organizations, fhir_user=principal.fhir_user, patient=principal.patient)
    return {"Authorization": f"Bearer {token}", **ASYNC}


def _kick_off(client, path: str, headers: dict) -> str:
    response = client.get(path, headers=headers)
    assert response.status_code == 202, response.text
    return response.headers["Content-Location"].replace("http://testserver", "")


def _poll(client, location: str, headers: dict, timeout: float = 30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        response = client.get(location, headers=headers)
        if response.status_code != 202:
            return response
        time.sleep(0.05)
    raise AssertionError("the export did not finish")


def _export(client, path: str, who: str) -> tuple[dict[str, set[str]], dict]:
    """Ids exported per type, and the manifest."""
    headers = _headers(client, who)
    response = _poll(client, _kick_off(client, path, headers), headers)
    assert response.status_code == 200, response.text
    manifest = response.json()
    found: dict[str, set[str]] = {}
    for item in manifest["output"]:
        lines = client.get(item["url"].replace("http://testserver", ""), headers=headers).content.splitlines()
        found[item["type"]] = {orjson.loads(line)["id"] for line in lines if line}
    return found, manifest


def _searched(client, who: str, res_type: str) -> set[str]:
    bundle = client.get(f"/{res_type}?_count=1000", headers=_headers(client, who)).json()
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def _group(store, members: list[str]) -> None:
    with store.session(write=True) as uow:
        uow.create({"resourceType": "Group", "id": "cohort", "type": "person", "actual": True,
                    "member": [{"entity": {"reference": f"Patient/{m}"}} for m in members]})


@pytest.mark.parametrize("who", ["child", "doctorA", "nurseA", "doctorB", "systemA", "system"])
def test_system_export_carries_exactly_what_the_callers_searches_show(network, who):
    exported, _ = _export(network, f"/$export?_type={CLINICAL}", who)
    for res_type in CLINICAL.split(","):
        assert exported.get(res_type, set()) == _searched(network, who, res_type), res_type


def test_a_patient_exports_only_their_own_and_their_proxied_records(network):
    exported, _ = _export(network, f"/Patient/$export?_type={CLINICAL}", "child")
    assert exported["Patient"] == {"child", "parent"}
    assert exported["Observation"] == {"obs-child", "obs-parent"}
    assert "Condition" not in exported


def test_a_practitioner_gets_related_and_consented_patients_and_their_institutions_records_only(network):
    exported, _ = _export(network, "/Patient/$export?_type=Observation", "doctorA")
    assert "obs-permit-B" in exported["Observation"]  # treatment relationship and a permitting Consent
    assert "obs-none-B" not in exported["Observation"]  # another hospital's patient, no relationship
    assert "obs-deny-B" not in exported["Observation"]  # a Consent denying all sharing
    assert "obs-none-A" in exported["Observation"]  # written at the practitioner's own institution


def test_a_trusted_system_exports_everything(network, store):
    exported, _ = _export(network, f"/$export?_type={CLINICAL}", "system")
    with store.session() as uow:
        for res_type in CLINICAL.split(","):
            stored = {m.id for m in search(uow, res_type, [("_count", "1000")]).matches}
            assert exported[res_type] == stored, res_type


def test_a_group_export_keeps_the_members_the_caller_may_see(network, store):
    _group(store, ["permit", "none", "deny"])
    exported, _ = _export(network, "/Group/cohort/$export?_type=Patient,Observation", "doctorA")
    assert exported["Patient"] == {"permit"}
    assert exported["Observation"] == {"obs-permit-B"}


def test_a_group_the_caller_may_not_see_is_not_known(network, store):
    _group(store, ["none"])
    headers = _headers(network, "doctorA")
    response = _poll(network, _kick_off(network, "/Group/cohort/$export", headers), headers)
    assert response.status_code == 404
    assert "Group/cohort is not known" in response.json()["issue"][0]["diagnostics"]


def test_deletions_of_hidden_resources_are_not_revealed(network, store):
    since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(0.01)
    with store.session(write=True) as uow:
        for res_id in ("obs-permit-B", "obs-none-B"):
            uow.delete(uow.current("Observation", res_id))
    _, manifest = _export(network, f"/$export?_type=Observation&_since={since}", "doctorA")
    headers = _headers(network, "doctorA")
    deleted = set()
    for item in manifest["deleted"]:
        for line in network.get(item["url"].replace("http://testserver", ""), headers=headers).content.splitlines():
            deleted |= {e["request"]["url"] for e in orjson.loads(line)["entry"]}
    assert deleted == {"Observation/obs-permit-B"}
    _, everything = _export(network, f"/$export?_type=Observation&_since={since}", "system")
    assert everything["deleted"], "a trusted system is told of both deletions"


def test_the_kick_off_is_audited_as_an_export_by_its_caller(network, store):
    _export(network, "/Patient/$export?_type=Observation", "child")
    deadline = time.time() + 10
    while True:  # committed on the chain before the answer; filed as a resource in the background
        audit_writer(store).flush()
        with store.session() as uow:
            events = [m.resource() for m in search(uow, "AuditEvent", [("_count", "1000")]).matches]
        exports = [e for e in events if e["type"].get("code") == "110106"]
        if exports or time.time() > deadline:
            break
        time.sleep(0.05)
    assert len(exports) == 1
    assert any(a.get("who", {}).get("reference") == "Patient/child" for a in exports[0]["agent"])


def test_a_resumed_job_decides_with_the_callers_claims_stored_in_its_row(network, store, tmp_path):
    headers = _headers(network, "child")
    location = _kick_off(network, f"/Patient/$export?_type={CLINICAL}", headers)
    job_id = location.rsplit("/", 1)[1]
    _poll(network, location, headers)
    with store.engine.connect() as conn:  # what another worker reads when it takes the job over
        row = conn.execute(export_jobs.select().where(export_jobs.c.id == job_id)).mappings().one()
    result = export(store, ExportRequest(**orjson.loads(row["request"])), tmp_path / "resumed")
    exported = {f.type: {orjson.loads(line)["id"] for line in f.path.read_text().splitlines()} for f in result.files}
    assert exported == {"Patient": {"child", "parent"}, "Observation": {"obs-child", "obs-parent"}}


def test_another_user_of_the_same_app_cannot_see_the_job(network):
    location = _kick_off(network, "/Patient/$export?_type=Observation", _headers(network, "child"))
    assert network.get(location, headers=_headers(network, "doctorA")).status_code == 404
    assert _poll(network, location, _headers(network, "child")).status_code == 200
