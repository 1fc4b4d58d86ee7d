"""`_list`, as https://hl7.org/fhir/R4/search.html ("_list") describes it: the resources a List refers to.

Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from tests.store.search_helpers import found, put


def patient(pid: str, family: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}]}


def a_list(lid: str, *items: str) -> dict:
    return {"resourceType": "List", "id": lid, "status": "current", "mode": "working",
            "entry": [{"item": {"reference": item}} for item in items]}


@pytest.fixture
def ward(store):
    put(store, patient("p1", "Chalmers"), patient("p2", "Chalmers"), patient("p3", "Peters"),
        {"resourceType": "Practitioner", "id": "p1"},
        a_list("rounds", "Patient/p1", "Patient/p3", "Practitioner/p1"), a_list("discharged", "Patient/p2"))
    return store


def test_list_matches_the_resources_it_refers_to(ward):
    assert found(ward, "Patient", "_list=rounds") == {"p1", "p3"}
    assert found(ward, "Patient", "_list=List/discharged") == {"p2"}
    assert found(ward, "Practitioner", "_list=rounds") == {"p1"}


def test_list_combines_with_other_criteria_and_or(ward):
    assert found(ward, "Patient", "_list=rounds&family=chalmers") == {"p1"}
    assert found(ward, "Patient", "_list=rounds,discharged") == {"p1", "p2", "p3"}
    assert found(ward, "Patient", "_list=rounds&_list=discharged") == set()


def test_an_unknown_or_deleted_list_holds_nothing(ward):
    assert found(ward, "Patient", "_list=nothing") == set()
    with ward.session(write=True) as uow:
        uow.delete(uow.current("List", "rounds"))
    assert found(ward, "Patient", "_list=rounds") == set()


def test_system_search_by_list(ward):
    assert found(ward, None, "_type=Patient,Practitioner&_list=rounds") == {"p1", "p3"}


def test_bad_list_values_are_refused(store):
    with pytest.raises(FhirError, match="not a List id"):
        found(store, "Patient", "_list=Group/1")
    with pytest.raises(FhirError, match="holds Condition resources, not Patient"):
        found(store, "Patient", "_list=$current-problems")
    with pytest.raises(FhirError, match="'\\$wishlist' is not defined"):
        found(store, "Patient", "_list=$wishlist")


def test_functional_lists_are_the_criteria_they_stand_for(store):
    def allergy(aid: str, status: str, category: str) -> dict:
        return {"resourceType": "AllergyIntolerance", "id": aid, "patient": {"reference": "Patient/p1"},
                "category": [category], "clinicalStatus": {"coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": status}]}}

    put(store, allergy("penicillin", "active", "medication"), allergy("peanut", "active", "food"),
        allergy("old", "resolved", "medication"),
        {"resourceType": "List", "id": "reviewed", "status": "current", "mode": "working",
         "entry": [{"item": {"reference": "AllergyIntolerance/old"}}]})
    assert found(store, "AllergyIntolerance", "patient=p1&_list=$current-allergies") == {"penicillin", "peanut"}
    assert found(store, "AllergyIntolerance", "_list=$current-drug-allergies") == {"penicillin"}
    assert found(store, "AllergyIntolerance", "_list=$current-drug-allergies,reviewed") == {"penicillin", "old"}
