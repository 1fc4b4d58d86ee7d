"""The SearchParameter registry: every official parameter reaches every type it is based on, with its own expression."""
from __future__ import annotations

import gzip
import json

import pytest

from ihs.fhir.definitions import search_parameters
from ihs.fhir.errors import InvalidResource
from ihs.fhir.fhirpath_compile import DOMAIN_RESOURCE_TYPES, RESOURCE_TYPES
from ihs.fhir.searchparams import AUDIT_EVENT_PARAMS, Registry, fulltext_types, registry, split_expression, union_parts
from tests.shared_data import shared_file


@pytest.fixture
def fresh() -> Registry:
    """A registry of the official parameters that tests may extend without touching the shared one."""
    return Registry(search_parameters())


def test_packaged_definitions_are_the_1375_official_search_parameters():
    bundle = json.loads(gzip.decompress(shared_file("fhir-r4-search-parameters.json.gz").read_bytes()))
    official = {e["resource"]["url"]: e["resource"] for e in bundle["entry"]}
    packaged = {d["url"]: d for d in search_parameters()}
    assert len(packaged) == 1375
    assert packaged.keys() == official.keys()
    for url, definition in packaged.items():
        assert definition.get("expression") == official[url].get("expression"), url


def test_every_base_type_gets_each_of_its_parameters():
    reg = registry()
    texts = fulltext_types(RESOURCE_TYPES)
    for definition in search_parameters():
        for base in definition["base"]:
            types = {"Resource": RESOURCE_TYPES, "DomainResource": DOMAIN_RESOURCE_TYPES}.get(base, [base])
            for resource_type in types:
                param = reg.get(resource_type, definition["code"])
                if resource_type == "AuditEvent" and definition["code"] not in AUDIT_EVENT_PARAMS:
                    assert param is None, definition["code"]  # AuditEvents: only what people search them by
                    continue
                if definition["code"] in ("_text", "_content") and resource_type not in texts:
                    assert param is None, resource_type  # full text for the configured types only
                    continue
                assert param is not None, (resource_type, definition["code"])
                assert param.type == definition["type"]
                assert param.url == definition["url"]


def test_patient_has_its_demographic_and_meta_parameters():
    params = registry().params_for("Patient")
    for code in ("birthdate", "name", "family", "given", "identifier", "general-practitioner", "organization",
                 "gender", "address-city", "email", "phone", "death-date", "deceased", "link",
                 "_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"):
        assert code in params, code
    assert params["birthdate"].type == "date"
    assert set(params["general-practitioner"].targets) == {"Organization", "Practitioner", "PractitionerRole"}
    assert params["organization"].expression == "Patient.managingOrganization"


def test_resource_parameters_apply_to_every_type_and_domain_resource_ones_skip_bundle():
    reg = registry()
    assert reg.get("Bundle", "_tag").expression == "Bundle.meta.tag"
    assert reg.get("Binary", "_profile").expression == "Binary.meta.profile"
    assert reg.get("Bundle", "_text") is None
    assert reg.get("Condition", "_text") is not None
    assert len(RESOURCE_TYPES) == 146 and "DomainResource" not in RESOURCE_TYPES


def test_multi_type_expression_keeps_only_the_types_own_part():
    reg = registry()
    assert reg.get("AllergyIntolerance", "patient").expression == "AllergyIntolerance.patient"
    assert reg.get("CarePlan", "patient").expression == "CarePlan.subject.where(resolve() is Patient)"
    assert reg.get("Observation", "code").expression == "Observation.code"
    assert reg.get("MedicationRequest", "code").expression == "(MedicationRequest.medication as CodeableConcept)"
    assert reg.get("Condition", "abatement-date").expression == \
        "Condition.abatement.as(dateTime) | Condition.abatement.as(Period)"
    assert reg.get("AuditEvent", "patient").expression == \
        "AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is Patient)"


def test_union_parts_ignore_bars_inside_strings_and_parentheses():
    assert union_parts("A.b.where(system='x|y') | (A.c as Quantity) | A.d") == \
        ["A.b.where(system='x|y')", "(A.c as Quantity)", "A.d"]
    assert split_expression("Patient.name | Practitioner.name", "Practitioner") == "Practitioner.name"
    assert split_expression("Patient.name", "Group") is None
    assert split_expression("Resource.meta.tag", "Patient") == "Patient.meta.tag"


def test_id_and_last_updated_come_from_columns_not_index_rows():
    reg = registry()
    assert not reg.get("Patient", "_id").indexed
    assert not reg.get("Patient", "_lastUpdated").indexed
    assert not reg.get("Condition", "_text").indexed
    assert reg.get("Patient", "_tag").indexed


def test_comparators_and_modifiers_follow_the_parameter_type():
    reg = registry()
    assert "sa" in reg.get("Patient", "birthdate").comparators
    assert reg.get("Patient", "gender").comparators == ()
    assert "of-type" in reg.get("Patient", "identifier").modifiers
    assert "exact" in reg.get("Patient", "name").modifiers


def test_composite_lists_its_components():
    param = registry().get("Observation", "component-code-value-quantity")
    assert param.expression == "Observation.component"
    assert param.components == (
        ("http://hl7.org/fhir/SearchParameter/Observation-component-code", "code"),
        ("http://hl7.org/fhir/SearchParameter/Observation-component-value-quantity", "value.as(Quantity)"))
    assert registry().by_url(param.components[1][0]).type == "quantity"


BIRTH_PLACE = {
    "resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/patient-birth-place",
    "code": "birth-place", "base": ["Patient"], "type": "string",
    "expression": "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value",
}


def test_add_user_defined_parameter(fresh):
    param = fresh.add(BIRTH_PLACE)
    assert param.code == "birth-place" and param.resource_type == "Patient"
    assert fresh.get("Patient", "birth-place") is param
    assert fresh.by_url(BIRTH_PLACE["url"]) is param
    assert registry().get("Patient", "birth-place") is None


def test_add_replaces_same_code_and_drops_derived_values(fresh):
    built = fresh.derived("probe", lambda: object())
    assert fresh.derived("probe", lambda: object()) is built
    fresh.add({**BIRTH_PLACE, "code": "family", "expression": "Patient.name.given"})
    assert fresh.get("Patient", "family").expression == "Patient.name.given"
    assert fresh.derived("probe", lambda: object()) is not built


@pytest.mark.parametrize("change, expression", [
    ({"code": None}, "SearchParameter.code"),
    ({"code": "has space"}, "SearchParameter.code"),
    ({"type": "colour"}, "SearchParameter.type"),
    ({"base": []}, "SearchParameter.base"),
    ({"base": ["Patient", "Spaceship"]}, "SearchParameter.base[1]"),
    ({"expression": None}, "SearchParameter.expression"),
    ({"expression": "Patient.name.frobnicate()"}, "SearchParameter.expression"),
    ({"expression": "Observation.code"}, "SearchParameter.expression"),
])
def test_add_rejects_unusable_definition_naming_the_element(fresh, change, expression):
    with pytest.raises(InvalidResource) as raised:
        fresh.add({**BIRTH_PLACE, **change})
    assert expression in [issue.expression for issue in raised.value.issues]


def test_add_composite_needs_known_component_definitions(fresh):
    composite = {"resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/code-interpretation",
                 "code": "code-interpretation", "base": ["Observation"], "type": "composite",
                 "expression": "Observation",
                 "component": [
                     {"definition": "http://hl7.org/fhir/SearchParameter/clinical-code", "expression": "code"},
                     {"definition": "http://example.org/SearchParameter/nowhere", "expression": "interpretation"}]}
    with pytest.raises(InvalidResource) as raised:
        fresh.add(composite)
    assert [i.expression for i in raised.value.issues] == ["SearchParameter.component[1].definition"]
    composite["component"][1]["definition"] = "http://hl7.org/fhir/SearchParameter/Observation-value-concept"
    assert fresh.add(composite).components[1] == (
        "http://hl7.org/fhir/SearchParameter/Observation-value-concept", "interpretation")


def test_audit_events_are_searchable_by_who_whose_what_when_and_outcome_only():
    params = registry().params_for("AuditEvent")
    assert {"patient", "entity", "agent", "date", "type", "subtype", "action", "outcome"} <= set(params)
    assert not {"address", "agent-name", "entity-role", "_content", "_text"} & set(params)


def test_full_text_is_offered_for_the_configured_types(monkeypatch):
    monkeypatch.setenv("IHS_FULLTEXT_TYPES", "Observation")
    assert fulltext_types(["Observation", "Patient"]) == {"Observation"}
    monkeypatch.setenv("IHS_FULLTEXT_TYPES", "*")
    assert fulltext_types(["Observation", "Patient"]) == {"Observation", "Patient"}
    monkeypatch.setenv("IHS_FULLTEXT_TYPES", "Observation,Obsrvation")
    with pytest.raises(ValueError, match="Obsrvation"):
        fulltext_types(["Observation", "Patient"])
    monkeypatch.delenv("IHS_FULLTEXT_TYPES")
    reg = registry()
    assert reg.get("Condition", "_content") is not None and reg.get("Observation", "_content") is None
