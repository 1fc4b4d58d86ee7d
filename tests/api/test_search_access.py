"""The authorization matrix of searches over HTTP: every role sees, counts, pages and includes only
what it may read, in type, compartment and system searches, history, batches, conditional
interactions and $everything (tests/auth/world.py's network, on both backends)."""
from __future__ import annotations

import pytest

from ihs.api.operations.smart import authority_of
from ihs.api.security import audit_writer
from ihs.auth import policy
from ihs.store.search import search
from tests.auth import world

WHO = ["doctorA", "nurseA", "pharmacistA", "doctorB", "child", "adminA", "regulator", "cdc", "insurer", "systemA"]


def _headers(client, who: str, **changes) -> dict:
    principal = world.principal(who, **changes)

    class _App:  # authority_of reads the app's state only
        app = client.app
    scope = changes.get("scope", "system/*.cruds" if who == "systemA" else world.ALL)
    token, _ = authority_of(_App()).access_token(
        subject=principal.subject, client_id="test-app", scope=scope,
        roles=principal.roles, organizations=principal.organizations, fhir_user=principal.fhir_user,
        patient=principal.patient)
    return {"Authorization": f"Bearer {token}"}


def _stored(uow) -> list[dict]:
    """Every current resource (the world and what the tests added: AuditEvents, ...)."""
    found, offset = [], 0
    while True:
        page = search(uow, None, [("_count", "1000"), ("_offset", str(offset))])
        found += [m.resource() for m in page.matches]
        if not page.has_next:
            return found
        offset += len(page.matches)


def _readable(store, who: str, res_type: str | None = None, **changes) -> set[str]:
    """Ids of the stored resources (of `res_type`) the policy lets `who` read."""
    principal = world.principal(who, **changes)
    with store.session() as uow:
        return {r["id"] for r in _stored(uow) if (res_type is None or r["resourceType"] == res_type)
                and policy.decide(principal, "read", r["resourceType"], r, uow)}


def _ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def _walk(client, url: str, headers: dict) -> tuple[list[str], list[dict]]:
    """Every match of every page, following next links."""
    found, pages = [], []
    while url:
        page = client.get(url, headers=headers).json()
        pages.append(page)
        found += _ids(page)
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    return found, pages


@pytest.mark.parametrize("who", WHO)
def test_type_searches_show_and_count_exactly_what_reads_allow(network, store, who):
    headers = _headers(network, who)
    for res_type in ("Observation", "Patient", "Condition", "Claim", "Organization", "MeasureReport"):
        answer = network.get(f"/{res_type}?_total=accurate&_count=100", headers=headers)
        allowed = policy.decide(world.principal(who), "search-type", res_type).allowed
        if not allowed:
            assert answer.status_code == 403, res_type
            continue
        assert answer.status_code == 200, (res_type, answer.text)
        expected = _readable(store, who, res_type)
        assert set(_ids(answer.json())) == expected, res_type
        assert answer.json()["total"] == len(expected), res_type


def test_a_patient_sees_their_own_and_their_proxied_records_only(network):
    headers = _headers(network, "child")
    bundle = network.get("/Observation?_total=accurate", headers=headers).json()
    assert sorted(_ids(bundle)) == ["obs-child", "obs-parent"] and bundle["total"] == 2
    assert "entry" not in network.get("/Observation?subject=Patient/rel", headers=headers).json()
    assert network.get("/Observation?subject=Patient/rel&_total=accurate", headers=headers).json()["total"] == 0


@pytest.mark.parametrize("who", ["doctorA", "child", "insurer"])
def test_next_links_page_within_what_the_caller_sees(network, store, who):
    headers = _headers(network, who)
    for res_type in ("Observation", "Claim"):
        if not policy.decide(world.principal(who), "search-type", res_type).allowed:
            continue
        found, pages = _walk(network, f"/{res_type}?_count=1&_sort=_id", headers)
        expected = _readable(store, who, res_type)
        assert sorted(found) == sorted(expected)
        assert len(pages) == max(1, len(expected))


@pytest.mark.parametrize("who", ["doctorA", "child", "pharmacistA", "insurer"])
def test_includes_and_revincludes_never_leak(network, store, who):
    headers = _headers(network, who)
    shown = {}
    for url in ("/Observation?_include=Observation:subject&_count=100",
                "/Patient?_revinclude=Observation:subject&_revinclude=Condition:subject&_count=100",
                "/Claim?_include=Claim:patient&_include:iterate=Patient:organization&_count=100",
                "/Patient?_revinclude=*&_count=100"):
        answer = network.get(url, headers=headers)
        if answer.status_code != 403:
            shown[url] = set(_ids(answer.json())) | set(_ids(answer.json(), "include"))
    audit_writer(store).flush()  # the searches' own AuditEvents are in the patient's record too
    readable = _readable(store, who)
    for url, ids in shown.items():
        assert ids <= readable, (url, ids - readable)


def test_a_doctor_includes_the_patients_they_may_see(network):
    bundle = network.get("/Observation?_id=obs-rel-B,obs-none-B&_include=Observation:subject",
                         headers=_headers(network, "doctorA")).json()
    assert _ids(bundle) == ["obs-rel-B"] and _ids(bundle, "include") == ["rel"]


def test_compartment_and_system_searches_are_filtered(network, store):
    headers = _headers(network, "doctorA")
    compartment = network.get("/Patient/none/Observation?_total=accurate", headers=headers).json()
    assert _ids(compartment) == ["obs-none-A"] and compartment["total"] == 1
    everything = network.get("/Patient/none/*", headers=headers).json()
    assert set(_ids(everything)) <= _readable(store, "doctorA")
    system = network.get("/?_type=Observation,Condition&_count=100&_total=accurate", headers=headers).json()
    expected = _readable(store, "doctorA", "Observation") | _readable(store, "doctorA", "Condition")
    assert set(_ids(system)) == expected and system["total"] == len(expected)


def test_break_the_glass_opens_the_record_a_search_names(network):
    headers = _headers(network, "doctorA")
    assert _ids(network.get("/Observation?subject=Patient/none", headers=headers).json()) == ["obs-none-A"]
    claimed = {**headers, "X-Break-Glass": "unconscious patient"}
    bundle = network.get("/Observation?subject=Patient/none", headers=claimed).json()
    assert sorted(_ids(bundle)) == ["obs-none-A", "obs-none-B"]


def test_type_and_system_history_show_only_visible_resources(network, store):
    headers = _headers(network, "child")
    shown = {}
    for url in ("/Observation/_history?_count=100", "/_history?_count=1000"):
        bundle = network.get(url, headers=headers).json()
        shown[url] = {e["resource"]["id"] for e in bundle["entry"]}
        assert bundle["total"] == len(bundle["entry"])
    audit_writer(store).flush()
    readable = _readable(store, "child")
    assert shown["/Observation/_history?_count=100"] == _readable(store, "child", "Observation")
    assert shown["/_history?_count=1000"] and shown["/_history?_count=1000"] <= readable
    assert network.get("/Observation/obs-rel-B/_history", headers=headers).status_code == 403


def test_searches_inside_a_batch_are_filtered(network):
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation?_total=accurate"}},
        {"request": {"method": "GET", "url": "Observation/obs-rel-B"}}]}
    answer = network.post("/", json=batch, headers=_headers(network, "child")).json()
    searched, read = answer["entry"]
    assert sorted(_ids(searched["resource"])) == ["obs-child", "obs-parent"] and searched["resource"]["total"] == 2
    assert read["response"]["status"].startswith("403")


def test_conditional_interactions_neither_see_nor_touch_hidden_resources(network):
    headers = _headers(network, "doctorA")
    assert network.delete("/Observation?_id=obs-none-B", headers=headers).status_code == 204
    assert network.get("/Observation/obs-none-B").status_code == 200  # still there (read as the system)
    new = world.observation("ignored", "rel", None)
    new.pop("id")
    created = network.post("/Observation", json=new, headers={**headers, "If-None-Exist": "_id=obs-none-B"})
    assert created.status_code == 201 and created.json()["id"] != "obs-none-B"


def test_searching_needs_a_search_scope(network):
    headers = _headers(network, "doctorA", scope="user/Observation.r")
    assert network.get("/Observation", headers=headers).status_code == 403


@pytest.mark.parametrize("who,patient,status", [("doctorA", "rel", 200), ("doctorA", "none", 200),
                                                 ("child", "parent", 200), ("regulator", "none", 403)])
def test_everything_answers_what_the_caller_may_read(network, store, who, patient, status):
    answer = network.get(f"/Patient/{patient}/$everything", headers=_headers(network, who))
    assert answer.status_code == status
    if status == 200:
        shown = set(_ids(answer.json()))
        assert patient in shown and shown <= _readable(store, who)


def test_contained_resources_are_shown_only_with_their_container(network):
    for patient in ("rel", "none"):
        request = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                   "contained": [{"resourceType": "Medication", "id": "med",
                                  "code": {"coding": [{"system": "http://example.org/drugs", "code": patient}]}}],
                   "medicationReference": {"reference": "#med"}, "subject": {"reference": f"Patient/{patient}"}}
        assert network.post("/MedicationRequest", json=request).status_code == 201
    headers = _headers(network, "doctorA")
    for contained_type in ("contained", "container"):
        bundle = network.get(f"/Medication?_contained=true&_containedType={contained_type}", headers=headers).json()
        codes = [e["resource"].get("code", {}).get("coding", [{}])[0].get("code")
                 or e["resource"]["subject"]["reference"] for e in bundle.get("entry", [])]
        assert codes in (["rel"], ["Patient/rel"]), (contained_type, codes)
