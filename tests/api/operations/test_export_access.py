"""Bulk $export obeys the access policy: every role exports exactly what its searches show, in the
files, the Group's members and the `deleted` array; the kick-off is audited, and the completed job
names the patients whose records it carried (tests/auth/world.py's network, on both backends)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson
import pytest

from ihs.analytics import export_audit
from ihs.analytics.bulk import ExportRequest, export
from ihs.analytics.compartment import patients_of
from ihs.analytics.export_patients import ExportedPatients
from ihs.analytics.jobs import export_jobs
from ihs.api.operations.smart import authority_of
from ihs.api.security import audit_writer
from ihs.auth.break_glass import record_use
from ihs.fhir.validation import validate
from ihs.store.search import search
from ihs.store.store import StoredResource
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


def _export_events(store) -> list[dict]:
    """The kick-off's and the completed jobs' export AuditEvents, oldest first."""
    audit_writer(store).flush()  # the kick-off's is committed on the chain before the answer, filed later
    with store.session() as uow:
        events = [m.resource() for m in search(uow, "AuditEvent", [("_count", "1000"), ("_sort", "date")]).matches]
    return [e for e in events if e["type"].get("code") == "110106"]


def _patients(event: dict) -> set[str]:
    return {e["what"]["reference"] for e in event.get("entity", []) if e.get("role", {}).get("code") == "1"}


def test_the_kick_off_and_the_completion_are_audited_as_exports_by_the_caller(network, store):
    _export(network, "/Patient/$export?_type=Observation", "child")
    kick_off, completed = _export_events(store)
    for event in (kick_off, completed):
        assert any(a.get("who", {}).get("reference") == "Patient/child" for a in event["agent"])
    assert _patients(kick_off) == set() and kick_off["entity"][-1]["query"]
    assert _patients(completed) == {"Patient/child", "Patient/parent"}
    assert completed["subtype"][0]["code"] == "$export"
    assert "2 resources of 2 patients; part 1 of 1" in completed["outcomeDesc"]
    validate(completed)


def test_the_completion_names_every_patient_whose_records_were_exported(network, store):
    exported, _ = _export(network, f"/$export?_type={CLINICAL}", "doctorA")
    with store.session() as uow:
        owners = {f"Patient/{p}" for res_type, ids in exported.items() for i in ids
                  for p in patients_of(uow.current(res_type, i).resource())}
    [completed] = _export_events(store)[1:]
    assert _patients(completed) == owners and "Patient/none" in owners  # obs-none-A: written at hospital A
    assert "purposeOfEvent" not in completed


def test_a_huge_export_names_its_patients_over_several_bounded_events(network, store, monkeypatch):
    monkeypatch.setattr(export_audit, "PATIENTS_PER_EVENT", 3)
    exported, _ = _export(network, "/$export?_type=Patient", "system")
    parts = _export_events(store)[1:]
    assert len(parts) == -(-len(exported["Patient"]) // 3) and all(len(_patients(e)) <= 3 for e in parts)
    assert set().union(*map(_patients, parts)) == {f"Patient/{p}" for p in exported["Patient"]}
    assert [e["outcomeDesc"].split("; ")[1].split(" names")[0] for e in parts] == \
        [f"part {n} of {len(parts)}" for n in range(1, len(parts) + 1)]


def test_an_export_through_an_open_emergency_grant_is_btg(network, store):
    doctor = world.principal("doctorA").claiming_break_glass("mass casualty incident")
    with store.session(write=True) as uow:
        record_use(uow, doctor, "none")
    exported, _ = _export(network, "/Patient/$export?_type=Observation", "doctorA")
    assert "obs-none-B" in exported["Observation"]
    [completed] = _export_events(store)[1:]
    assert [r["coding"][0]["code"] for r in completed["purposeOfEvent"]] == ["BTG"]
    assert "Patient/none" in _patients(completed)


def test_the_patient_sees_the_export_of_their_record_in_their_own_audit_events(network, store):
    _export(network, "/$export?_type=Observation", "doctorA")
    audit_writer(store).flush()
    headers = {"Authorization": _headers(network, "child")["Authorization"]}
    mine = network.get("/AuditEvent?patient=Patient/child&type=110106&_count=100", headers=headers).json()
    assert mine.get("entry") is None  # doctorA exported nothing of the child's
    _export(network, f"/$export?_type={CLINICAL}", "system")
    audit_writer(store).flush()
    mine = network.get("/AuditEvent?patient=Patient/child&type=110106&_count=100", headers=headers).json()
    [event] = [e["resource"] for e in mine["entry"]]
    assert "Patient/child" in _patients(event) and "complete" in event["outcomeDesc"]


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


def test_the_exported_patients_are_exactly_those_of_the_resources_compartments():
    resources = world.resources() + [
        world.observation("obs-focus", "rel", None) | {"focus": [{"reference": "Patient/fetus"}]},  # not a compartment
        world.observation("obs-absolute", "rel", None) | {"subject": {"reference": "http://h/fhir/Patient/abs"}},
        world.condition("cond-versioned", "old", None) | {"asserter": {"reference": "Patient/none/_history/2"}},
    ]
    collected = ExportedPatients({"Condition": frozenset({"old", "partial"})})
    for number, resource in enumerate(resources + resources):  # twice: the second pass parses nothing new
        collected.add(StoredResource(number, resource["resourceType"], resource["id"], 1, 0, False,
                                     orjson.dumps(resource).decode()))
    assert collected.patients == set().union(*(patients_of(r) for r in resources))
    assert "fetus" not in collected.patients and {"abs", "none"} <= collected.patients
    assert collected.break_glass == {"old", "partial"}  # of their Conditions, not of other records
