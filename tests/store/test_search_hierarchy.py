"""Reference :above and :below over circular references, as https://hl7.org/fhir/R4/search.html
("Searching Hierarchies") describes them: Location.partOf, Organization.partOf and the like.

Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from tests.store.search_helpers import found, put


def location(lid: str, part_of: str | None = None) -> dict:
    body = {"resourceType": "Location", "id": lid, "name": lid}
    if part_of:
        body["partOf"] = {"reference": f"Location/{part_of}"}
    return body


def encounter(eid: str, where: str) -> dict:
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"code": "IMP"}, "location": [{"location": {"reference": f"Location/{where}"}}]}


@pytest.fixture
def hospital(store):
    # hospital > {north-wing > {ward-1 > bed-1a, ward-2}, south-wing}
    put(store, location("hospital"), location("north-wing", "hospital"), location("south-wing", "hospital"),
        location("ward-1", "north-wing"), location("ward-2", "north-wing"), location("bed-1a", "ward-1"),
        encounter("e-bed", "bed-1a"), encounter("e-ward-2", "ward-2"), encounter("e-south", "south-wing"),
        encounter("e-hospital", "hospital"))
    return store


def test_below_matches_references_to_the_location_or_anything_part_of_it(hospital):
    assert found(hospital, "Location", "partof:below=Location/north-wing") == {"ward-1", "ward-2", "bed-1a"}
    assert found(hospital, "Location", "partof:below=hospital") == {
        "north-wing", "south-wing", "ward-1", "ward-2", "bed-1a"}
    assert found(hospital, "Location", "partof:below=bed-1a") == set()


def test_above_matches_references_to_the_location_or_what_it_is_part_of(hospital):
    # locations that are part of ward-1 or of one of ward-1's ancestors
    assert found(hospital, "Location", "partof:above=Location/ward-1") == {
        "bed-1a", "ward-1", "ward-2", "north-wing", "south-wing"}
    assert found(hospital, "Location", "partof:above=hospital") == {"north-wing", "south-wing"}


def test_other_references_to_a_hierarchical_type_take_the_modifiers(hospital):
    assert found(hospital, "Encounter", "location:below=Location/north-wing") == {"e-bed", "e-ward-2"}
    assert found(hospital, "Encounter", "location:below=Location/hospital") == {
        "e-bed", "e-ward-2", "e-south", "e-hospital"}
    assert found(hospital, "Encounter", "location:above=Location/bed-1a") == {"e-bed", "e-hospital"}


def test_or_and_and_combine_as_for_any_reference(hospital):
    assert found(hospital, "Encounter", "location:below=ward-1,south-wing") == {"e-bed", "e-south"}
    assert found(hospital, "Encounter", "location:below=north-wing&location:above=bed-1a") == {"e-bed"}


def test_a_circular_hierarchy_ends(store):
    put(store, location("a", "c"), location("b", "a"), location("c", "b"), location("d", "c"))
    assert found(store, "Location", "partof:below=a") == {"a", "b", "c", "d"}
    assert found(store, "Location", "partof:above=d") == {"a", "b", "c", "d"}


def test_organizations_form_a_hierarchy_too(store):
    put(store, {"resourceType": "Organization", "id": "region"},
        {"resourceType": "Organization", "id": "hospital", "partOf": {"reference": "Organization/region"}},
        {"resourceType": "Organization", "id": "clinic", "partOf": {"reference": "Organization/hospital"}})
    assert found(store, "Organization", "partof:below=Organization/region") == {"hospital", "clinic"}
    assert found(store, "Organization", "partof:above=Organization/hospital") == {"hospital", "clinic"}


def test_types_without_a_hierarchy_are_refused(store):
    with pytest.raises(FhirError, match="form no hierarchy"):
        found(store, "Observation", "subject:below=Patient/1")
    with pytest.raises(FhirError, match="outside this server"):
        found(store, "Location", "partof:below=http://elsewhere.org/fhir/Location/1")
