"""Chaining, reverse chaining (_has), _include and _revinclude (with :iterate and *)."""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from ihs.store.search import includes
from tests.store.search_helpers import found, put, result

LOINC = "http://loinc.org"


@pytest.fixture
def clinic(store):
    put(store,
        {"resourceType": "Organization", "id": "north", "name": "North Clinic"},
        {"resourceType": "Organization", "id": "south", "name": "South Hospital", "partOf": {"reference": "Organization/north"}},
        {"resourceType": "Practitioner", "id": "doc", "name": [{"family": "House"}]},
        {"resourceType": "Patient", "id": "ann", "name": [{"family": "Smith"}],
         "managingOrganization": {"reference": "Organization/north"},
         "generalPractitioner": [{"reference": "Practitioner/doc"}]},
        {"resourceType": "Patient", "id": "bob", "name": [{"family": "Jones"}],
         "managingOrganization": {"reference": "Organization/south"}},
        {"resourceType": "Location", "id": "ward", "name": "Smith Ward"},
        {"resourceType": "Observation", "id": "hr-ann", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "8867-4"}]}, "subject": {"reference": "Patient/ann"},
         "performer": [{"reference": "Practitioner/doc"}]},
        {"resourceType": "Observation", "id": "bp-ann", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "85354-9"}]}, "subject": {"reference": "Patient/ann"}},
        {"resourceType": "Observation", "id": "hr-bob", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "8867-4"}]}, "subject": {"reference": "Patient/bob"}},
        {"resourceType": "Observation", "id": "hr-ward", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "8867-4"}]}, "subject": {"reference": "Location/ward"}},
        {"resourceType": "Provenance", "id": "prov", "recorded": "2020-01-01T00:00:00Z",
         "target": [{"reference": "Observation/hr-ann"}], "agent": [{"who": {"reference": "Practitioner/doc"}}]})
    return store


def test_chain_one_level_with_type(clinic):
    assert found(clinic, "Observation", "subject:Patient.name=smith") == {"hr-ann", "bp-ann"}


def test_chain_without_type_covers_every_target_type_having_the_parameter(clinic):
    # Patient.name and Location.name both exist: "smith" finds the patient Smith and the "Smith Ward"
    assert found(clinic, "Observation", "subject.name=smith") == {"hr-ann", "bp-ann", "hr-ward"}


def test_chain_two_levels(clinic):
    assert found(clinic, "Observation", "subject:Patient.organization.name=north") == {"hr-ann", "bp-ann"}
    assert found(clinic, "Observation", "subject:Patient.organization.name=south") == {"hr-bob"}


def test_chain_three_levels(clinic):
    query = "subject:Patient.organization.partof.name=north"
    assert found(clinic, "Observation", query) == {"hr-bob"}


def test_chain_to_id_and_and_with_other_criteria(clinic):
    assert found(clinic, "Observation", "subject:Patient._id=bob") == {"hr-bob"}
    assert found(clinic, "Observation", "subject:Patient.name=smith&code=8867-4") == {"hr-ann"}


def test_chain_on_a_non_reference_is_an_error(clinic):
    with pytest.raises(FhirError, match="only references can be chained"):
        found(clinic, "Observation", "code.name=x")


def test_chain_to_unknown_parameter_is_an_error(clinic):
    with pytest.raises(FhirError, match="colour"):
        found(clinic, "Observation", "subject:Patient.colour=red")


def test_has_finds_resources_referred_to(clinic):
    assert found(clinic, "Patient", "_has:Observation:patient:code=85354-9") == {"ann"}
    assert found(clinic, "Patient", "_has:Observation:subject:code=8867-4") == {"ann", "bob"}


def test_has_nested(clinic):
    # patients with an observation that some Provenance targets
    assert found(clinic, "Patient", "_has:Observation:patient:_has:Provenance:target:_id=prov") == {"ann"}


def test_has_with_chain_inside(clinic):
    assert found(clinic, "Practitioner", "_has:Observation:performer:subject:Patient.name=smith") == {"doc"}


def test_has_must_refer_to_the_searched_type(clinic):
    with pytest.raises(FhirError, match="does not refer to Organization"):
        found(clinic, "Organization", "_has:Observation:patient:code=8867-4")


def _keys(resources):
    return {f"{r.type}/{r.id}" for r in resources}


def test_include_follows_a_reference_parameter(clinic):
    answer = result(clinic, "Observation", "code=8867-4&_include=Observation:subject")
    assert _keys(answer.matches) == {"Observation/hr-ann", "Observation/hr-bob", "Observation/hr-ward"}
    assert _keys(answer.included) == {"Patient/ann", "Patient/bob", "Location/ward"}


def test_include_with_target_type(clinic):
    answer = result(clinic, "Observation", "code=8867-4&_include=Observation:subject:Patient")
    assert _keys(answer.included) == {"Patient/ann", "Patient/bob"}


def test_include_star_follows_every_reference(clinic):
    answer = result(clinic, "Observation", "_id=hr-ann&_include=Observation:*")
    assert _keys(answer.included) == {"Patient/ann", "Practitioner/doc"}


def test_include_iterate_follows_included_resources(clinic):
    plain = result(clinic, "Observation", "_id=hr-bob&_include=Observation:subject")
    assert _keys(plain.included) == {"Patient/bob"}
    iterated = result(clinic, "Observation", "_id=hr-bob&_include=Observation:subject"
                                              "&_include:iterate=Patient:organization"
                                              "&_include:iterate=Organization:partof")
    assert _keys(iterated.included) == {"Patient/bob", "Organization/south", "Organization/north"}


def test_revinclude(clinic):
    answer = result(clinic, "Patient", "_id=ann&_revinclude=Observation:subject")
    assert _keys(answer.included) == {"Observation/hr-ann", "Observation/bp-ann"}


def test_revinclude_iterate_and_star(clinic):
    answer = result(clinic, "Patient", "_id=ann&_revinclude=Observation:subject&_revinclude:iterate=Provenance:target")
    assert _keys(answer.included) == {"Observation/hr-ann", "Observation/bp-ann", "Provenance/prov"}
    everything = result(clinic, "Practitioner", "_id=doc&_revinclude=*")
    assert _keys(everything.included) == {"Patient/ann", "Observation/hr-ann", "Provenance/prov"}


def test_include_never_duplicates_a_match(clinic):
    answer = result(clinic, "Organization", "_include=Organization:partof")
    assert _keys(answer.matches) == {"Organization/north", "Organization/south"}
    assert answer.included == []


def test_include_of_a_type_not_searched_is_an_error(clinic):
    with pytest.raises(FhirError, match="Patient is not a type being searched"):
        result(clinic, "Observation", "_include=Patient:organization")


def test_includes_beyond_the_limit_shrink_the_page_and_never_truncate(clinic, monkeypatch):
    monkeypatch.setattr(includes, "MAX_INCLUDED", 2)
    answer = result(clinic, "Patient", "_revinclude=Observation:subject&_count=10&_sort=_id")
    # ann alone brings two observations: the page stops there and a next page carries on
    assert _keys(answer.matches) == {"Patient/ann"}
    assert answer.has_next
    assert _keys(answer.included) == {"Observation/hr-ann", "Observation/bp-ann"}
    rest = result(clinic, "Patient", "_revinclude=Observation:subject&_count=10&_sort=_id&_offset=1")
    assert _keys(rest.matches) == {"Patient/bob"} and _keys(rest.included) == {"Observation/hr-bob"}


def test_one_match_with_too_many_includes_is_too_costly(clinic, monkeypatch):
    monkeypatch.setattr(includes, "MAX_INCLUDED", 1)
    with pytest.raises(FhirError, match="more than 1 resources"):
        result(clinic, "Patient", "_id=ann&_revinclude=Observation:subject")
