"""_contained and _containedType, as https://hl7.org/fhir/R4/search.html ("Contained Resources") describes them.

By default a search never looks inside contained resources; `_contained=true` searches only contained
resources and `both` both kinds; `_containedType=container` (the default) returns the containers,
`contained` the contained resources themselves. Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from tests.store.search_helpers import found, put, result

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def medication(mid: str, code: str) -> dict:
    return {"resourceType": "Medication", "id": mid, "code": {"coding": [{"system": RXNORM, "code": code}]}}


def prescription(rid: str, *contained: dict, status: str = "active") -> dict:
    body = {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": "Patient/p1"}}
    if contained:
        body["contained"] = list(contained)
        body["medicationReference"] = {"reference": "#" + contained[0]["id"]}
    return body


@pytest.fixture
def pharmacy(store):
    put(store,
        medication("aspirin", "1191"),
        prescription("rx-aspirin", medication("m1", "1191")),
        prescription("rx-two", medication("m1", "1191"), medication("m2", "5640")),
        prescription("rx-ibuprofen", medication("m1", "5640"), status="stopped"),
        prescription("rx-plain"))
    return store


def test_by_default_contained_resources_are_not_searched(pharmacy):
    assert found(pharmacy, "Medication", "code=1191") == {"aspirin"}
    assert found(pharmacy, "Medication", "code=1191&_contained=false") == {"aspirin"}


def test_contained_true_returns_the_containers_by_default(pharmacy):
    assert found(pharmacy, "Medication", "code=1191&_contained=true") == {"rx-aspirin", "rx-two"}
    assert found(pharmacy, "Medication", "code=5640&_contained=true&_containedType=container") == \
        {"rx-two", "rx-ibuprofen"}


def test_contained_both_returns_containers_and_ordinary_matches(pharmacy):
    assert found(pharmacy, "Medication", "code=1191&_contained=both") == {"aspirin", "rx-aspirin", "rx-two"}


def test_contained_type_contained_returns_the_contained_resources(pharmacy):
    page = result(pharmacy, "Medication", "code=5640&_contained=true&_containedType=contained")
    got = {(m.container, m.type, m.id) for m in page.matches}
    assert got == {("MedicationRequest/rx-two", "Medication", "m2"), ("MedicationRequest/rx-ibuprofen", "Medication", "m1")}
    assert all(m.resource()["code"]["coding"][0]["code"] == "5640" for m in page.matches)
    assert page.total == 2


def test_contained_both_with_contained_type_contained_mixes_the_two(pharmacy):
    page = result(pharmacy, "Medication", "code=1191&_contained=both&_containedType=contained&_count=2")
    first = [(m.container, m.id) for m in page.matches]
    assert page.has_next
    rest = result(pharmacy, "Medication", "code=1191&_contained=both&_containedType=contained&_count=2&_offset=2")
    assert set(first + [(m.container, m.id) for m in rest.matches]) == {
        (None, "aspirin"), ("MedicationRequest/rx-aspirin", "m1"), ("MedicationRequest/rx-two", "m1")}


def test_criteria_hold_on_the_same_contained_resource(pharmacy):
    # rx-two contains m1 (1191) and m2 (5640): no single contained Medication has both codes
    assert found(pharmacy, "Medication", "code=1191&code=5640&_contained=true") == set()
    assert found(pharmacy, "Medication", "_id=m2&code=5640&_contained=true") == {"rx-two"}


def test_updating_or_deleting_the_container_updates_what_is_searched(pharmacy):
    with pharmacy.session(write=True) as uow:
        current = uow.current("MedicationRequest", "rx-two")
        uow.update(prescription("rx-two", medication("m9", "7052")), current)
        uow.delete(uow.current("MedicationRequest", "rx-aspirin"))
    assert found(pharmacy, "Medication", "code=1191&_contained=true") == set()
    assert found(pharmacy, "Medication", "code=7052&_contained=true") == {"rx-two"}
    assert found(pharmacy, "Medication", "code=5640&_contained=true") == {"rx-ibuprofen"}


def test_contained_resources_follow_their_own_references_and_totals(pharmacy):
    page = result(pharmacy, "Medication", "_contained=true&_containedType=contained&_total=accurate")
    assert page.total == 4
    assert found(pharmacy, "MedicationRequest", "_contained=true") == set()


def test_bad_values_are_refused_with_the_allowed_ones(store):
    with pytest.raises(FhirError, match="takes false, true or both"):
        found(store, "Medication", "_contained=maybe")
    with pytest.raises(FhirError, match="takes container or contained"):
        found(store, "Medication", "_contained=true&_containedType=inner")


def test_contained_entries_carry_their_container_url(client):
    client.post("/MedicationRequest", json=prescription("x", medication("m1", "1191")))
    created = client.get("/MedicationRequest").json()["entry"][0]["resource"]["id"]
    bundle = client.get("/Medication?code=1191&_contained=true&_containedType=contained").json()
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"http://testserver/MedicationRequest/{created}#m1"]
    assert bundle["entry"][0]["resource"]["resourceType"] == "Medication"


def test_a_chain_follows_a_local_reference_into_the_contained_resource(pharmacy):
    # rx-two refers to its first contained Medication (#m1, 1191); m2 is contained but not referred to
    assert found(pharmacy, "MedicationRequest", "medication.code=1191") == {"rx-aspirin", "rx-two"}
    assert found(pharmacy, "MedicationRequest", "medication.code=5640") == {"rx-ibuprofen"}
    assert found(pharmacy, "MedicationRequest", "medication:Medication.code=1191&status=stopped") == set()
    assert found(pharmacy, "MedicationRequest", "medication._id=m1&status=stopped") == {"rx-ibuprofen"}


def test_a_chain_mixes_contained_and_ordinary_targets(pharmacy):
    put(pharmacy, {"resourceType": "MedicationRequest", "id": "rx-shared", "status": "active", "intent": "order",
                   "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/aspirin"}})
    assert found(pharmacy, "MedicationRequest", "medication.code=1191") == {"rx-aspirin", "rx-two", "rx-shared"}
    # probed per candidate when another test drives
    assert found(pharmacy, "MedicationRequest", "_id=rx-two,rx-shared,rx-ibuprofen&medication.code=1191") == \
        {"rx-two", "rx-shared"}


def test_a_local_reference_names_only_the_referring_resources_own_contained_resource(pharmacy):
    # rx-ibuprofen's #m1 is 5640: the m1 inside rx-aspirin (1191) is not its medication
    assert "rx-ibuprofen" not in found(pharmacy, "MedicationRequest", "medication.code=1191")
    with pharmacy.session(write=True) as uow:
        uow.update(prescription("rx-ibuprofen", medication("m1", "7052"), status="stopped"),
                   uow.current("MedicationRequest", "rx-ibuprofen"))
    assert found(pharmacy, "MedicationRequest", "medication.code=5640") == set()
    assert found(pharmacy, "MedicationRequest", "medication.code=7052") == {"rx-ibuprofen"}
