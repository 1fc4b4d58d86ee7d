"""`_filter`, as https://hl7.org/fhir/R4/search_filter.html describes it: comparisons by operator,
and / or / not with parentheses, and parameter paths through references.

Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from tests.store.search_helpers import found, put

LOINC = "http://loinc.org"


def patient(pid: str, family: str, given: str, gender: str, birth: str, org: str | None = None) -> dict:
    body = {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth,
            "name": [{"family": family, "given": [given]}]}
    if org:
        body["managingOrganization"] = {"reference": f"Organization/{org}"}
    return body


def observation(oid: str, subject: str, code: str, value: float, when: str) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": f"Patient/{subject}"},
            "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}


@pytest.fixture
def clinic(store):
    put(store,
        {"resourceType": "Organization", "id": "north", "name": "North Clinic"},
        patient("peter", "Chalmers", "Peter", "male", "1974-12-25", "north"),
        patient("petra", "Peters", "Petra", "female", "1985-06-01"),
        patient("jose", "Núñez", "José", "male", "1990-03-15", "north"),
        patient("ann", "Smithers", "Ann", "female", "1962-01-30"),
        observation("bp1", "peter", "8480-6", 150, "2020-05-01T10:00:00Z"),
        observation("bp2", "petra", "8480-6", 118, "2021-07-04"),
        observation("hr", "peter", "8867-4", 72, "2020-05-01T10:05:00Z"))
    return store


def test_string_operators(clinic):
    assert found(clinic, "Patient", '_filter=family eq "chalmers"') == {"peter"}
    assert found(clinic, "Patient", '_filter=family eq "chal"') == set()
    assert found(clinic, "Patient", "_filter=family sw pet") == {"petra"}
    assert found(clinic, "Patient", "_filter=family co ther") == {"ann"}
    assert found(clinic, "Patient", "_filter=family ew hers") == {"ann"}
    assert found(clinic, "Patient", "_filter=family ew ers") == {"peter", "petra", "ann"}
    assert found(clinic, "Patient", '_filter=family eq "NUNEZ"') == {"jose"}
    assert found(clinic, "Patient", '_filter=family ne "chalmers"') == {"petra", "jose", "ann"}


def test_token_date_and_quantity_operators(clinic):
    assert found(clinic, "Patient", "_filter=gender eq female") == {"petra", "ann"}
    assert found(clinic, "Patient", "_filter=gender ne female") == {"peter", "jose"}
    assert found(clinic, "Patient", "_filter=birthdate lt 1975") == {"peter", "ann"}
    assert found(clinic, "Patient", "_filter=birthdate ge 1985-06-01") == {"petra", "jose"}
    assert found(clinic, "Observation", "_filter=code eq http://loinc.org|8480-6") == {"bp1", "bp2"}
    assert found(clinic, "Observation", "_filter=value-quantity gt 140") == {"bp1"}
    assert found(clinic, "Observation", "_filter=date po 2020-05") == {"bp1", "hr"}
    assert found(clinic, "Observation", "_filter=date eq 2020-05-01T10:00:00Z") == {"bp1"}


def test_and_or_not_and_parentheses(clinic):
    assert found(clinic, "Patient", "_filter=gender eq male and birthdate gt 1980") == {"jose"}
    assert found(clinic, "Patient", "_filter=family sw pet or family sw smi") == {"petra", "ann"}
    assert found(clinic, "Patient", "_filter=gender eq female and (birthdate lt 1970 or family sw pet)") == {
        "petra", "ann"}
    assert found(clinic, "Patient", "_filter=not (gender eq male) and birthdate lt 1980") == {"ann"}
    # and binds tighter than or
    assert found(clinic, "Patient", "_filter=gender eq male and family sw nun or family sw smi") == {"jose", "ann"}


def test_paths_through_references(clinic):
    assert found(clinic, "Observation", '_filter=subject.name eq "peter"') == {"bp1", "hr"}
    assert found(clinic, "Observation", "_filter=subject.gender eq female and code eq 8480-6") == {"bp2"}
    assert found(clinic, "Patient", '_filter=organization.name sw "north"') == {"peter", "jose"}


def test_present(clinic):
    assert found(clinic, "Patient", "_filter=organization pr true") == {"peter", "jose"}
    assert found(clinic, "Patient", "_filter=organization pr false") == {"petra", "ann"}


def test_filter_combines_with_ordinary_parameters(clinic):
    assert found(clinic, "Patient", "_filter=birthdate lt 1980&gender=male") == {"peter"}
    assert found(clinic, "Patient", "_filter=gender eq female&_filter=family sw smi") == {"ann"}


def test_quoted_values_keep_spaces_commas_and_escapes(store):
    put(store, patient("a", "Smith, Jones", "A", "male", "1970"), patient("b", 'O"Brien', "B", "male", "1970"))
    assert found(store, "Patient", '_filter=family eq "smith, jones"') == {"a"}
    assert found(store, "Patient", r'_filter=family eq "o\"brien"') == {"b"}


def test_bad_expressions_are_refused_with_what_to_fix(clinic):
    with pytest.raises(FhirError, match="'co' does not apply to 'birthdate'"):
        found(clinic, "Patient", "_filter=birthdate co 1970")
    with pytest.raises(FhirError, match="no search parameter path 'shoe-size'"):
        found(clinic, "Patient", "_filter=shoe-size gt 40")
    with pytest.raises(FhirError, match="ends where '\\)' was expected"):
        found(clinic, "Patient", "_filter=(gender eq male")
    with pytest.raises(FhirError, match="ends where a value was expected"):
        found(clinic, "Patient", "_filter=gender eq")
    with pytest.raises(FhirError, match="not supported"):
        found(clinic, "Patient", "_filter=name[use eq official].family eq smith")
