"""Each search parameter type, prefix and modifier, as https://hl7.org/fhir/R4/search.html describes it.

Every test runs on SQLite and on PostgreSQL (the `store` fixture).
"""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from ihs.store.search.custom import ParamLookup
from ihs.store.search.query import parse_query
from ihs.store.search.ranges import windows
from ihs.store.search.where import choose_driver
from tests.store.search_helpers import found, put

LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"


def patient(pid: str, **fields) -> dict:
    return {"resourceType": "Patient", "id": pid, **fields}


def observation(oid: str, **fields) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": fields.pop("code", {"coding": [{"system": LOINC, "code": "8867-4"}]}), **fields}


# ---------------------------------------------------------------------------- string

@pytest.fixture
def people(store):
    put(store,
        patient("eve", name=[{"family": "Chalmers", "given": ["Peter", "James"]}]),
        patient("jose", name=[{"family": "Núñez", "given": ["José"]}]),
        patient("zhang", name=[{"family": "张", "given": ["伟"], "text": "张伟"}]),
        patient("pete", name=[{"family": "Peters", "given": ["Ann"]}], birthDate="1980"),
        patient("nameless", birthDate="1990-01-01"))
    return store


def test_string_default_is_a_case_and_accent_insensitive_prefix(people):
    assert found(people, "Patient", "family=chal") == {"eve"}
    assert found(people, "Patient", "family=NUNEZ") == {"jose"}
    assert found(people, "Patient", "name=pete") == {"eve", "pete"}
    assert found(people, "Patient", "family=halmers") == set()


def test_string_keeps_chinese_characters(people):
    assert found(people, "Patient", "family=张") == {"zhang"}
    assert found(people, "Patient", "name=张伟") == {"zhang"}


def test_string_exact_matches_the_whole_value_case_and_accents_included(people):
    assert found(people, "Patient", "family:exact=Núñez") == {"jose"}
    assert found(people, "Patient", "family:exact=Nunez") == set()
    assert found(people, "Patient", "family:exact=chalmers") == set()


def test_string_contains_matches_anywhere(people):
    assert found(people, "Patient", "family:contains=alm") == {"eve"}
    assert found(people, "Patient", "name:contains=ETE") == {"eve", "pete"}


def test_string_or_by_comma_and_by_repetition(people):
    assert found(people, "Patient", "family=chal,peters") == {"eve", "pete"}
    assert found(people, "Patient", "given=peter&given=james") == {"eve"}
    assert found(people, "Patient", "given=peter&given=ann") == set()


def test_string_like_wildcards_are_literal(people):
    assert found(people, "Patient", "family=%") == set()
    assert found(people, "Patient", "family:contains=_") == set()


def test_missing_true_and_false(people):
    assert found(people, "Patient", "name:missing=true") == {"nameless"}
    assert found(people, "Patient", "birthdate:missing=false") == {"pete", "nameless"}


def test_escaped_comma_is_part_of_the_value(store):
    put(store, patient("a", name=[{"family": "Smith,Jones"}]), patient("b", name=[{"family": "Smith"}]))
    assert found(store, "Patient", r"family:exact=Smith\,Jones") == {"a"}
    assert found(store, "Patient", "family:exact=Smith,Jones") == {"b"}


# ---------------------------------------------------------------------------- token

@pytest.fixture
def coded(store):
    put(store,
        observation("hr", code={"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}],
                                "text": "Pulse"}),
        observation("bp", code={"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]}),
        observation("local", code={"coding": [{"code": "8867-4"}]}),
        observation("other", code={"coding": [{"system": "urn:local", "code": "8867-4"}]}),
        patient("p1", gender="female", active=True,
                identifier=[{"system": "urn:mrn", "value": "A-1",
                             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                  "code": "MR"}]}}],
                telecom=[{"system": "phone", "value": "555-0101"}]),
        patient("p2", gender="male", active=False, identifier=[{"system": "urn:ssn", "value": "A-1"}]))
    return store


def test_token_code_alone_matches_any_system(coded):
    assert found(coded, "Observation", "code=8867-4") == {"hr", "local", "other"}


def test_token_system_and_code(coded):
    assert found(coded, "Observation", f"code={LOINC}|8867-4") == {"hr"}


def test_token_bar_code_means_no_system(coded):
    assert found(coded, "Observation", "code=|8867-4") == {"local"}


def test_token_system_bar_means_any_code_of_that_system(coded):
    assert found(coded, "Observation", f"code={LOINC}|") == {"hr", "bp"}


def test_token_identifier_boolean_and_code(coded):
    assert found(coded, "Patient", "identifier=urn:mrn|A-1") == {"p1"}
    assert found(coded, "Patient", "identifier=A-1") == {"p1", "p2"}
    assert found(coded, "Patient", "active=true") == {"p1"}
    assert found(coded, "Patient", "gender=male") == {"p2"}
    assert found(coded, "Patient", "phone=555-0101") == {"p1"}


def test_token_text_searches_display_and_text(coded):
    assert found(coded, "Observation", "code:text=heart") == {"hr"}
    assert found(coded, "Observation", "code:text=pulse") == {"hr"}
    assert found(coded, "Observation", "code:text=pressure") == {"bp"}


def test_token_not_includes_resources_without_a_value(coded):
    put(coded, patient("p3"))
    assert found(coded, "Patient", "gender:not=male") == {"p1", "p3"}


def test_token_of_type_matches_identifier_type_and_value(coded):
    query = "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|A-1"
    assert found(coded, "Patient", query) == {"p1"}
    with pytest.raises(FhirError, match="identifier:of-type"):
        found(coded, "Patient", "identifier:of-type=A-1")


def test_token_in_and_not_in_use_value_set_expansions(coded):
    genders = "http://hl7.org/fhir/ValueSet/administrative-gender"
    assert found(coded, "Patient", f"gender:in={genders}") == {"p1", "p2"}
    assert found(coded, "Patient", f"gender:not-in={genders}") == set()
    with pytest.raises(FhirError, match="not a value set"):
        found(coded, "Patient", "gender:in=http://example.org/no-such-valueset")


def test_token_below_and_above_follow_the_code_hierarchy(store):
    acts = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    put(store, {"resourceType": "Encounter", "id": "amb", "status": "finished", "class": {"system": acts, "code": "AMB"}},
        {"resourceType": "Encounter", "id": "emer", "status": "finished", "class": {"system": acts, "code": "EMER"}})
    from ihs.store.search.terminology import related
    below_amb = related(acts, "AMB", "below")[acts]
    assert "AMB" in below_amb
    assert found(store, "Encounter", f"class:below={acts}|AMB") == {"amb"}
    assert found(store, "Encounter", f"class:above={acts}|AMB") == {"amb"}


# ---------------------------------------------------------------------------- date

@pytest.fixture
def dated(store):
    put(store,
        observation("day", effectiveDateTime="2020-03-15"),
        observation("instant", effectiveDateTime="2020-03-15T10:30:00+08:00"),
        observation("month", effectiveDateTime="2020-04"),
        observation("period", effectivePeriod={"start": "2020-03-10", "end": "2020-03-20"}),
        observation("open", effectivePeriod={"start": "2021-01-01"}),
        observation("none"))
    return store


@pytest.mark.parametrize("query, expected", [
    ("date=2020-03-15", {"day", "instant"}),
    ("date=2020-03", {"day", "instant", "period"}),
    ("date=eq2020", {"day", "instant", "month", "period"}),
    ("date=ne2020-03-15", {"month", "period", "open"}),
    ("date=gt2020-03-15", {"month", "period", "open"}),
    ("date=lt2020-03-15", {"period"}),
    ("date=ge2020-03-15", {"day", "instant", "month", "period", "open"}),
    ("date=le2020-03-15", {"day", "instant", "period"}),
    ("date=sa2020-03-31", {"month", "open"}),
    ("date=eb2020-03-15", set()),
    ("date=eb2020-04-01", {"day", "instant", "period"}),
    ("date=ge2020-03-01&date=lt2020-04-01", {"day", "instant", "period"}),
    ("date=2021,2020-04", {"month"}),
])
def test_date_prefixes_compare_ranges(dated, query, expected):
    assert found(dated, "Observation", query) == expected


def test_date_time_zones_are_compared_in_utc(dated):
    # 10:30 at +08:00 is 02:30 UTC
    assert found(dated, "Observation", "date=2020-03-15T02:30:00Z") == {"instant"}
    assert found(dated, "Observation", "date=2020-03-15T10:30:00+08:00") == {"instant"}
    # an unencoded '+' arrives as a space
    assert found(dated, "Observation", "date=2020-03-15T10:30:00 08:00") == {"instant"}


def test_date_ap_is_approximately(dated):
    assert "day" in found(dated, "Observation", "date=ap2020-03-14")
    assert "open" not in found(dated, "Observation", "date=ap2020-03-14")


def test_open_period_extends_forever(dated):
    assert found(dated, "Observation", "date=gt2099-01-01") == {"open"}


def test_malformed_date_names_the_parameter(dated):
    with pytest.raises(FhirError, match="'date'.*not a date"):
        found(dated, "Observation", "date=15/03/2020")


# ---------------------------------------------------------------------------- number and quantity

@pytest.fixture
def measured(store):
    def vital(oid, value, unit, code=None):
        return observation(oid, valueQuantity={"value": value, "unit": unit, "system": UCUM, "code": code or unit})
    put(store, vital("g100", 100, "g"), vital("g99", 99.6, "g"), vital("kg", 0.1, "kg"), vital("mg", 100, "mg"),
        vital("hg", 120, "mm[Hg]"), vital("cel", 37.0, "Cel"),
        observation("nosystem", valueQuantity={"value": 100, "unit": "g"}),
        {"resourceType": "RiskAssessment", "id": "r1", "status": "final",
         "prediction": [{"probabilityDecimal": 0.25}]},
        {"resourceType": "RiskAssessment", "id": "r2", "status": "final",
         "prediction": [{"probabilityDecimal": 0.8}]})
    return store


def test_number_precision_sets_the_range_of_eq(measured):
    assert found(measured, "RiskAssessment", "probability=0.25") == {"r1"}
    # 0.3 is [0.25, 0.35): the low end is in, the high end out
    assert found(measured, "RiskAssessment", "probability=0.3") == {"r1"}
    assert found(measured, "RiskAssessment", "probability=0.2") == set()
    assert found(measured, "RiskAssessment", "probability=0.250") == {"r1"}
    assert found(measured, "RiskAssessment", "probability=gt0.5") == {"r2"}
    assert found(measured, "RiskAssessment", "probability=le0.25") == {"r1"}
    assert found(measured, "RiskAssessment", "probability=ne0.25") == {"r2"}
    assert found(measured, "RiskAssessment", "probability=ap0.78") == {"r2"}


def test_quantity_number_only_ignores_units(measured):
    assert found(measured, "Observation", "value-quantity=100") == {"g100", "mg", "nosystem", "g99"}
    assert found(measured, "Observation", "value-quantity=100.0") == {"g100", "mg", "nosystem"}


def test_quantity_with_ucum_unit_compares_canonical_values(measured):
    # 100 g = 0.1 kg; 100 mg is a different amount
    assert found(measured, "Observation", f"value-quantity=100|{UCUM}|g") == {"g100", "kg", "g99"}
    assert found(measured, "Observation", f"value-quantity=0.1|{UCUM}|kg") == {"g100", "kg", "g99"}
    assert found(measured, "Observation", f"value-quantity=lt1|{UCUM}|g") == {"mg"}
    assert found(measured, "Observation", f"value-quantity=gt300|{UCUM}|K") == {"cel"}


def test_quantity_code_without_system_matches_code_or_unit(measured):
    assert found(measured, "Observation", "value-quantity=100||g") == {"g100", "nosystem", "g99"}
    assert found(measured, "Observation", "value-quantity=gt100||mm[Hg]") == {"hg"}


def test_malformed_quantity_names_the_parameter(measured):
    with pytest.raises(FhirError, match="value-quantity"):
        found(measured, "Observation", "value-quantity=heavy")


# ---------------------------------------------------------------------------- reference

@pytest.fixture
def linked(store):
    put(store, patient("p1"), patient("p2"), {"resourceType": "Group", "id": "p1", "type": "person", "actual": True},
        observation("o1", subject={"reference": "Patient/p1"}),
        observation("o2", subject={"reference": "Group/p1"}),
        observation("o3", subject={"reference": "http://other.org/fhir/Patient/p2"}),
        observation("o4", subject={"identifier": {"system": "urn:mrn", "value": "77"}}),
        observation("o5", subject={"reference": "Patient/p2/_history/3"}))
    return store


def test_reference_by_type_and_id(linked):
    assert found(linked, "Observation", "subject=Patient/p1") == {"o1"}
    assert found(linked, "Observation", "subject:Patient=p1") == {"o1"}
    assert found(linked, "Observation", "subject:Group=p1") == {"o2"}


def test_reference_by_bare_id_matches_any_type(linked):
    assert found(linked, "Observation", "subject=p1") == {"o1", "o2"}


def test_reference_version_is_ignored(linked):
    assert found(linked, "Observation", "subject=Patient/p2") == {"o3", "o5"}


def test_reference_absolute_url_matches_as_written(linked):
    assert found(linked, "Observation", "subject=http://other.org/fhir/Patient/p2") == {"o3"}


def test_reference_to_own_base_is_relative(linked):
    assert found(linked, "Observation", "subject=http://ihs.example/fhir/Patient/p1",
                 base="http://ihs.example/fhir") == {"o1"}


def test_reference_identifier_modifier(linked):
    assert found(linked, "Observation", "subject:identifier=urn:mrn|77") == {"o4"}


def test_reference_type_modifier_must_be_a_target(linked):
    with pytest.raises(FhirError, match="cannot refer to Practitioner"):
        found(linked, "Observation", "subject:Practitioner=p1")


# ---------------------------------------------------------------------------- uri, composite, common

def test_uri_exact_above_and_below(store):
    put(store, {"resourceType": "ValueSet", "id": "a", "status": "active", "url": "http://acme.org/fhir/ValueSet/123"},
        {"resourceType": "ValueSet", "id": "b", "status": "active", "url": "http://acme.org/fhir/ValueSet/124"},
        {"resourceType": "ValueSet", "id": "c", "status": "active", "url": "http://other.org/ValueSet/123"})
    assert found(store, "ValueSet", "url=http://acme.org/fhir/ValueSet/123") == {"a"}
    assert found(store, "ValueSet", "url:below=http://acme.org/fhir/") == {"a", "b"}
    assert found(store, "ValueSet", "url:above=http://acme.org/fhir/ValueSet/123/_history/5") == {"a"}


def test_composite_code_value_quantity(store):
    put(store, observation("tall", code={"coding": [{"system": LOINC, "code": "8302-2"}]},
                           valueQuantity={"value": 180, "system": UCUM, "code": "cm", "unit": "cm"}),
        observation("short", code={"coding": [{"system": LOINC, "code": "8302-2"}]},
                    valueQuantity={"value": 150, "system": UCUM, "code": "cm", "unit": "cm"}),
        observation("heavy", code={"coding": [{"system": LOINC, "code": "29463-7"}]},
                    valueQuantity={"value": 180, "system": UCUM, "code": "kg", "unit": "kg"}))
    assert found(store, "Observation", "code-value-quantity=8302-2$gt170") == {"tall"}
    assert found(store, "Observation", f"code-value-quantity={LOINC}|8302-2$1.8|{UCUM}|m") == {"tall"}
    assert found(store, "Observation", "code-value-quantity=8302-2$gt100,29463-7$lt100") == {"tall", "short"}


def test_component_code_value_quantity(store):
    def bp(oid, systolic):
        return observation(oid, code={"coding": [{"system": LOINC, "code": "85354-9"}]}, component=[
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
             "valueQuantity": {"value": systolic, "system": UCUM, "code": "mm[Hg]", "unit": "mm[Hg]"}},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
             "valueQuantity": {"value": 80, "system": UCUM, "code": "mm[Hg]", "unit": "mm[Hg]"}}])
    put(store, bp("high", 160), bp("normal", 118))
    assert found(store, "Observation", "component-code-value-quantity=8480-6$ge140") == {"high"}
    assert found(store, "Observation", "component-code-value-quantity=8462-4$ge140") == set()


def test_common_parameters(store):
    put(store, patient("a", meta={"tag": [{"system": "urn:t", "code": "vip"}],
                                  "profile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
                                  "security": [{"system": "urn:s", "code": "R"}], "source": "urn:src#1"}),
        patient("b"))
    assert found(store, "Patient", "_id=a,c") == {"a"}
    assert found(store, "Patient", "_id:not=a") == {"b"}
    assert found(store, "Patient", "_tag=urn:t|vip") == {"a"}
    assert found(store, "Patient", "_profile=http://hl7.org/fhir/StructureDefinition/Patient") == {"a"}
    assert found(store, "Patient", "_security=R") == {"a"}
    assert found(store, "Patient", "_source=urn:src#1") == {"a"}
    assert found(store, "Patient", "_lastUpdated=gt2000-01-01") == {"a", "b"}
    assert found(store, "Patient", "_lastUpdated=lt2000-01-01") == set()


def test_deleted_resources_are_not_found(store):
    put(store, patient("a", gender="male"), patient("b", gender="male"))
    with store.session(write=True) as uow:
        uow.delete(uow.current("Patient", "a"))
    assert found(store, "Patient", "gender=male") == {"b"}
    assert found(store, "Patient", "_id=a") == set()


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("query, message", [
    ("colour=red", "Patient has no search parameter 'colour'"),
    ("family:fuzzy=x", "modifier ':fuzzy'"),
    ("birthdate=yesterday", "'birthdate'.*not a date"),
    ("gender:missing=maybe", ":missing takes true or false"),
    ("_count=many", "'_count'"),
    ("_sort=colour", "'_sort'"),
    ("_summary=short", "'_summary'"),
    ("_query=x", "not supported"),
])
def test_unknown_or_malformed_parameters_are_errors_naming_them(store, query, message):
    with pytest.raises(FhirError, match=message) as caught:
        found(store, "Patient", query)
    assert caught.value.status == 400


def test_lenient_ignores_and_reports_bad_parameters(store):
    put(store, patient("a", gender="male"), patient("b", gender="female"))
    from tests.store.search_helpers import result
    answer = result(store, "Patient", "colour=red&gender=male", lenient=True)
    assert {m.id for m in answer.matches} == {"a"}
    assert len(answer.warnings) == 1 and "colour" in answer.warnings[0].diagnostics
    assert answer.warnings[0].severity == "warning"


def test_two_sided_date_range_on_one_parameter(store):
    put(store, *[patient(f"b{year}", birthDate=f"{year}-06-15") for year in (1968, 1970, 1975, 1979, 1980)],
        patient("year-only", birthDate="1979"), patient("month", birthDate="1969-12"))
    assert found(store, "Patient", "birthdate=ge1970&birthdate=lt1980") == {"b1970", "b1975", "b1979", "year-only"}
    assert found(store, "Patient", "birthdate=gt1969-12&birthdate=le1979") == {"b1970", "b1975", "b1979",
                                                                                 "year-only"}
    assert found(store, "Patient", "birthdate=ge1969-12-01&birthdate=lt1970-01-01") == {"month"}


def test_two_sided_range_over_periods(dated):
    assert found(dated, "Observation", "date=ge2020-03-01&date=lt2020-04-01") == {"day", "instant", "period"}
    assert found(dated, "Observation", "date=gt2020-03-12&date=lt2020-03-16") == {"day", "instant", "period"}


def test_two_sided_range_finds_periods_of_any_length_that_start_before_it(store):
    encounter = lambda eid, start, end=None: {  # noqa: E731
        "resourceType": "Encounter", "id": eid, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "period": {"start": start, **({"end": end} if end else {})}}
    put(store,
        encounter("visit", "2020-01-10T09:00:00Z", "2020-01-10T09:30:00Z"),
        encounter("overnight", "2019-12-31T22:00:00Z", "2020-01-01T02:00:00Z"),  # shorter than a day
        encounter("before", "2019-12-30T22:00:00Z", "2019-12-31T23:00:00Z"),
        encounter("stay", "2019-11-20T08:00:00Z", "2020-01-03T10:00:00Z"),  # longer than a day
        encounter("ongoing", "2015-06-01"),  # open: it never ends
        encounter("after", "2020-02-01T00:00:00Z", "2020-02-01T01:00:00Z"))
    window = "date=ge2020-01-01&date=lt2020-02-01"
    # ge2020-01-01 is [2020-01-01, 2020-01-02) or later: the overnight visit ends inside that day
    assert found(store, "Encounter", window) == {"visit", "stay", "ongoing"}
    assert found(store, "Encounter", window + "&class=AMB") == {"visit", "stay", "ongoing"}
    to_the_second = "date=ge2020-01-01T00:00:00Z&date=lt2020-02-01&class=AMB"
    assert found(store, "Encounter", to_the_second) == {"visit", "overnight", "stay", "ongoing"}
    assert found(store, "Encounter", "date=gt2019-12-31T23:30:00Z&date=lt2020-01-01T00:30:00Z") == \
        {"overnight", "stay", "ongoing"}
    with store.session(write=True) as uow:  # a stay that grows past a day is found by its new length
        grown = encounter("before", "2019-12-28T22:00:00Z", "2020-01-02T06:00:00Z")
        uow.update(grown, uow.current("Encounter", "before"))
    assert "before" in found(store, "Encounter", window + "&class=AMB")


def test_a_period_window_drives_the_search(store):
    with store.session() as uow:
        parsed = parse_query(["Encounter"], [("class", "AMB"), ("date", "ge2020-01-01"), ("date", "lt2020-02-01")],
                             ParamLookup(uow))
        nodes = windows([c.node for c in parsed.criteria["Encounter"]])
        # the window is counted like any selective test: the smaller one drives
        assert choose_driver(nodes, ["Encounter"], lambda node, types: 10 if node is nodes[1] else 5000) == (1, 10)
