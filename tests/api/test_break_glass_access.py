"""Break-the-glass over HTTP: a search, an include, $everything or a read that reaches a patient only
by an emergency claim or grant records the grant (and notifies once per grant) and is audited with
purpose of use BTG naming the patient; one that needs no claim is neither (tests/auth/world.py's
network, on both backends)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ihs.api.operations.smart import authority_of
from ihs.api.security import audit_writer
from ihs.auth import policy
from ihs.auth.config import PolicyConfig
from ihs.auth.schema import break_glass
from ihs.store.search import search
from tests.auth import world

CLAIM = {"X-Break-Glass": "unconscious patient, suspected overdose"}


@pytest.fixture(autouse=True)
def privacy_officer(monkeypatch):
    monkeypatch.setattr(policy, "_policy", policy.Policy(PolicyConfig(cache_seconds=0,
                                                                      privacy_officer="Practitioner/drB")))


def _headers(client, who: str, **claims) -> dict:
    principal = world.principal(who, **claims)

    class _App:  # authority_of reads the app's state only
        app = client.app
    token, _ = authority_of(_App()).access_token(
        subject=principal.subject, client_id="test-app", scope=claims.get("scope", world.ALL),
        roles=principal.roles, organizations=principal.organizations, fhir_user=principal.fhir_user,
        patient=principal.patient)
    return {"Authorization": f"Bearer {token}"}


def _grants(store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(select(break_glass.c.subject, break_glass.c.patient)).all())


def _notices(store, patient: str) -> list[str]:
    with store.session() as uow:
        found = search(uow, "Communication", [("subject", f"Patient/{patient}"), ("_count", "100")]).matches
    return sorted(m.resource()["recipient"][0]["reference"] for m in found)


def _events(store, interaction: str | None = None) -> list[dict]:
    """The AuditEvents of reads, searches and operations, oldest first."""
    audit_writer(store).flush()
    with store.session() as uow:
        found = [m.resource() for m in search(uow, "AuditEvent", [("_count", "1000"), ("_sort", "date")]).matches]
    return [e for e in found if e.get("subtype") and (interaction is None or e["subtype"][0]["code"] == interaction)]


def _purpose(event: dict) -> list[str]:
    return [r["coding"][0]["code"] for r in event.get("purposeOfEvent", [])]


def _patients(event: dict) -> list[str]:
    return [e["what"]["reference"] for e in event.get("entity", [])
            if e.get("role", {}).get("code") == "1" and "what" in e]


def _ids(bundle: dict, mode: str = "match") -> list[str]:
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode)


def test_a_search_opened_by_a_claim_records_the_grant_notifies_and_is_audited_btg(network, store):
    headers = {**_headers(network, "doctorA"), **CLAIM}
    bundle = network.get("/Observation?subject=Patient/none", headers=headers).json()
    assert _ids(bundle) == ["obs-none-A", "obs-none-B"]
    assert _grants(store) == [("doctorA", "none")]
    assert _notices(store, "none") == ["Patient/none", "Practitioner/drB"]
    [event] = _events(store, "search-type")
    assert _purpose(event) == ["BTG"] and _patients(event) == ["Patient/none"]
    assert event["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "BTG"


def test_later_searches_under_the_grant_notify_no_one_again_and_are_still_btg(network, store):
    claimed = {**_headers(network, "doctorA"), **CLAIM}
    network.get("/Observation?subject=Patient/none", headers=claimed)
    unclaimed = _headers(network, "doctorA")
    assert _ids(network.get("/Observation?patient=none", headers=unclaimed).json()) == ["obs-none-A", "obs-none-B"]
    network.get("/Patient/none/Observation", headers=claimed)
    assert _grants(store) == [("doctorA", "none")]
    assert _notices(store, "none") == ["Patient/none", "Practitioner/drB"]
    events = _events(store)
    assert len(events) == 3 and all(_purpose(e) == ["BTG"] and _patients(e) == ["Patient/none"] for e in events)


def test_a_search_that_matches_nothing_still_used_the_claim(network, store):
    headers = {**_headers(network, "doctorA"), **CLAIM}
    bundle = network.get("/Observation?subject=Patient/none&code=http://loinc.org|0000-0", headers=headers).json()
    assert "entry" not in bundle
    assert _grants(store) == [("doctorA", "none")]
    [event] = _events(store, "search-type")
    assert _purpose(event) == ["BTG"] and _patients(event) == ["Patient/none"]


@pytest.mark.parametrize("url", ["/Observation?subject=Patient/rel", "/Patient?_id=none", "/Observation?code=8867-4",
                                 "/Patient/rel/Observation"])
def test_a_claim_the_search_does_not_need_is_neither_recorded_nor_btg(network, store, url):
    headers = {**_headers(network, "doctorA"), **CLAIM}
    assert network.get(url, headers=headers).status_code == 200
    assert _grants(store) == [] and _notices(store, "none") == [] and _notices(store, "rel") == []
    [event] = _events(store)
    assert _purpose(event) == [] and "purposeOfUse" not in event["agent"][0]
    assert _patients(event) == []


def test_a_patient_the_caller_treats_under_a_consent_excluding_labels_is_opened_by_the_claim(network, store):
    headers = {**_headers(network, "doctorA"), **CLAIM}
    bundle = network.get("/Observation?subject=Patient/partial", headers=headers).json()
    assert "obs-partial-R" in _ids(bundle)  # restricted by the patient's Consent: shown by the claim alone
    assert _grants(store) == [("doctorA", "partial")]


def test_includes_that_reach_a_patient_by_the_claim_are_btg(network, store):
    headers = {**_headers(network, "doctorA"), **CLAIM}
    bundle = network.get("/Patient?_id=none&_revinclude=Observation:subject", headers=headers).json()
    assert _ids(bundle) == ["none"] and _ids(bundle, "include") == ["obs-none-A", "obs-none-B"]
    assert _grants(store) == [("doctorA", "none")]
    [event] = _events(store, "search-type")
    assert _purpose(event) == ["BTG"] and _patients(event) == ["Patient/none"]


def test_everything_under_a_claim_is_recorded_and_audited_btg(network, store):
    headers = {**_headers(network, "doctorA"), **CLAIM}
    bundle = network.get("/Patient/none/$everything", headers=headers).json()
    assert {"obs-none-B", "cond-notifiable"} <= set(_ids(bundle))
    assert _grants(store) == [("doctorA", "none")]
    [event] = _events(store, "operation")
    assert _purpose(event) == ["BTG"] and _patients(event) == ["Patient/none"]


def test_everything_of_a_treated_patient_needs_no_claim_and_is_audited_plainly(network, store):
    headers = {**_headers(network, "doctorA"), **CLAIM}
    bundle = network.get("/Patient/permit/$everything", headers=headers).json()
    assert "obs-permit-B" in _ids(bundle)
    assert _grants(store) == []
    [event] = _events(store, "operation")
    assert _purpose(event) == [] and _patients(event) == ["Patient/permit"]


def test_a_read_opened_by_a_claim_records_the_grant_and_is_audited_btg(network, store):
    headers = _headers(network, "doctorA")
    assert network.get("/Observation/obs-none-B", headers=headers).status_code == 403
    assert network.get("/Observation/obs-none-B", headers={**headers, **CLAIM}).status_code == 200
    assert _grants(store) == [("doctorA", "none")]
    assert _notices(store, "none") == ["Patient/none", "Practitioner/drB"]
    read = [e for e in _events(store, "read") if e["outcome"] == "0"]
    assert len(read) == 1 and _purpose(read[0]) == ["BTG"] and "Patient/none" in _patients(read[0])


def test_an_open_grant_marks_only_the_searches_that_can_reach_its_patient(network, store):
    network.get("/Observation?subject=Patient/none", headers={**_headers(network, "doctorA"), **CLAIM})
    headers = _headers(network, "doctorA")
    network.get("/Observation?subject=Patient/rel", headers=headers)  # names a treated patient only
    network.get("/Condition?code=hypertension", headers=headers)  # names none: the grant may show theirs
    first, named_rel, unnamed = _events(store, "search-type")
    assert _purpose(named_rel) == [] and _patients(named_rel) == []
    assert _purpose(unnamed) == ["BTG"] and _patients(unnamed) == ["Patient/none"]


def test_a_refused_or_malformed_search_records_no_grant(network, store):
    headers = {**_headers(network, "doctorA"), **CLAIM}
    assert network.get("/Observation?subject=Patient/none&no-such-parameter=1", headers=headers).status_code == 400
    assert _grants(store) == [] and _notices(store, "none") == []


def test_a_write_opened_by_a_claim_records_the_grant_with_the_change(network, store):
    observation = world.observation("ignored", "none", None)
    observation.pop("id")
    headers = {**_headers(network, "doctorA"), **CLAIM}
    assert network.post("/Observation", json=observation, headers={**headers, "Content-Type":
                                                                  "application/fhir+json"}).status_code == 201
    assert _grants(store) == [("doctorA", "none")]
    with store.session() as uow:
        created = [m.resource() for m in search(uow, "AuditEvent", [("action", "C"), ("_count", "100")]).matches]
    assert [_purpose(e) for e in created] == [["BTG"]]


def test_the_patient_sees_the_emergency_search_in_their_own_audit_events(network, store):
    network.get("/Observation?subject=Patient/none", headers={**_headers(network, "doctorA"), **CLAIM})
    audit_writer(store).flush()
    patient = _headers(network, "child", fhir_user="Patient/none", patient="none", scope="patient/*.rs launch/patient")
    mine = network.get("/AuditEvent?patient=Patient/none&_count=100", headers=patient).json()
    searches = [e["resource"] for e in mine.get("entry", []) if e["resource"].get("subtype", [{}])[0].get("code")
                == "search-type"]
    assert any(_purpose(e) == ["BTG"] and e["agent"][0]["who"]["reference"] == "Practitioner/drA" for e in searches)
    notices = network.get("/Communication?subject=Patient/none", headers=patient).json()
    assert [e["resource"]["topic"]["coding"][0]["code"] for e in notices.get("entry", [])] == ["BTG", "BTG"]


def test_a_batch_searching_under_a_claim_records_the_grant_and_is_audited_btg(network, store):
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation?subject=Patient/none"}},
        {"request": {"method": "GET", "url": "Observation?subject=Patient/rel"}}]}
    headers = {**_headers(network, "doctorA"), **CLAIM, "Content-Type": "application/fhir+json"}
    answer = network.post("/", json=batch, headers=headers).json()
    assert _ids(answer["entry"][0]["resource"]) == ["obs-none-A", "obs-none-B"]
    assert _grants(store) == [("doctorA", "none")]
    [event] = _events(store, "batch")
    assert _purpose(event) == ["BTG"] and _patients(event) == ["Patient/none"]
