import pytest

from ihs.auth.scopes import parse_scope, parse_scopes, resource_matches, scope_criteria, scope_permits
from ihs.fhir.errors import FhirError

VITAL = {"resourceType": "Observation", "id": "o1", "status": "final",
         "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                   "code": "vital-signs"}]}],
         "code": {"text": "pulse"}, "subject": {"reference": "Patient/p1"}}
LAB = {**VITAL, "category": [{"coding": [{"code": "laboratory"}]}]}


def test_v1_read_means_read_and_search():
    scope = parse_scope("patient/Observation.read")
    assert (scope.context, scope.resource_type, scope.permissions) == ("patient", "Observation", frozenset("rs"))


def test_v1_write_and_star():
    assert parse_scope("user/*.write").permissions == frozenset("cud")
    assert parse_scope("user/*.*").permissions == frozenset("cruds")


def test_v2_permissions_in_order():
    assert parse_scope("system/*.rs").permissions == frozenset("rs")
    assert parse_scope("user/Patient.cruds").permissions == frozenset("cruds")


@pytest.mark.parametrize("text", ["patient/Observation.sr", "patient/Observation.", "doctor/Observation.rs",
                                  "patient/Observation.rx", "Observation.read", "patient/Observation.rs?"])
def test_malformed_scopes_are_rejected(text):
    with pytest.raises(FhirError):
        parse_scope(text)


def test_launch_and_identity_scopes_are_not_clinical():
    scopes = parse_scopes("launch/patient openid fhirUser offline_access patient/*.rs")
    assert scopes.has("launch/patient") and scopes.has("openid") and scopes.has("offline_access")
    assert [s.text for s in scopes.clinical] == ["patient/*.rs"]


def test_scope_permits_by_interaction_and_type():
    scopes = parse_scopes("patient/Observation.rs user/Patient.u")
    assert scope_permits(scopes, "read", "Observation")
    assert scope_permits(scopes, "search-type", "Observation")
    assert scope_permits(scopes, "vread", "Observation")
    assert not scope_permits(scopes, "create", "Observation")
    assert not scope_permits(scopes, "read", "Condition")
    assert scope_permits(scopes, "update", "Patient") and scope_permits(scopes, "patch", "Patient")
    assert not scope_permits(scopes, "delete", "Patient")


def test_wildcard_type():
    assert scope_permits(parse_scopes("user/*.cruds"), "delete", "Encounter")


def test_query_narrowed_scope_permits_only_matching_resources():
    scopes = parse_scopes("patient/Observation.rs?category=vital-signs")
    assert scope_permits(scopes, "read", "Observation", VITAL)
    assert not scope_permits(scopes, "read", "Observation", LAB)
    # with no resource yet (a search), the narrowing becomes search criteria
    assert scope_permits(scopes, "search-type", "Observation")
    assert scope_criteria(scopes, "search-type", "Observation") == [(("category", "vital-signs"),)]


def test_query_with_system_and_code():
    scopes = parse_scopes(
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs")
    assert scope_permits(scopes, "read", "Observation", VITAL)
    assert not scope_permits(scopes, "read", "Observation", LAB)


def test_unnarrowed_scope_wins_over_narrowed():
    scopes = parse_scopes("patient/Observation.rs?category=vital-signs patient/Observation.rs")
    assert scope_criteria(scopes, "search-type", "Observation") is None
    assert scope_permits(scopes, "read", "Observation", LAB)


def test_several_narrowed_scopes_are_alternatives():
    scopes = parse_scopes("patient/Observation.rs?category=vital-signs patient/Observation.rs?category=laboratory")
    assert scope_criteria(scopes, "search-type", "Observation") == [(("category", "vital-signs"),),
                                                                     (("category", "laboratory"),)]
    assert scope_permits(scopes, "read", "Observation", LAB)


def test_no_scope_no_criteria():
    assert scope_criteria(parse_scopes("patient/Condition.rs"), "search-type", "Observation") == []


def test_resource_matches_reference_and_id():
    assert resource_matches(VITAL, (("subject", "Patient/p1"),))
    assert not resource_matches(VITAL, (("subject", "Patient/p2"),))
    assert resource_matches(VITAL, (("_id", "o1"),))


def test_within_for_granting_requests():
    allowed = parse_scope("patient/*.rs")
    assert parse_scope("patient/Observation.rs").within(allowed)
    assert parse_scope("patient/Observation.r").within(allowed)
    assert not parse_scope("patient/Observation.cruds").within(allowed)
    assert not parse_scope("user/Observation.rs").within(allowed)
    narrowed = parse_scope("patient/Observation.rs?category=vital-signs")
    assert narrowed.within(allowed)
    assert not parse_scope("patient/Observation.rs").within(narrowed)
