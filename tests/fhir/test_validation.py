"""R4 validation: the spec's own examples and Synthea validate; each kind of mistake is caught where it is."""
from __future__ import annotations

import copy
import json
import re
import tarfile
from pathlib import Path

import orjson
import pytest

from ihs.fhir import definitions
from ihs.fhir.errors import InvalidResource
from ihs.fhir.validation import MAX_ISSUES, issues, resource_types, validate
from tests.shared_data import r4_definitional_types, r4_examples, shared_file

EXCEPTIONS = json.loads((Path(__file__).parent / "validation_exceptions.json").read_text())
# the resource categories whose instances define the specification rather than record care
XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'


def expressions(resource: dict) -> list[str]:
    return [issue.expression for issue in issues(resource)]


# -- the specification's examples --------------------------------------------------------------

@pytest.fixture(scope="module")
def package() -> dict[str, dict]:
    return r4_examples()


@pytest.fixture(scope="module")
def definitional_types(package) -> set[str]:
    return r4_definitional_types()


def split(package, definitional_types, definitional: bool) -> dict[str, dict]:
    return {name: r for name, r in package.items() if (r["resourceType"] in definitional_types) == definitional}


def check_all(resources: dict[str, dict], exceptions: list[dict]) -> dict[str, list[str]]:
    """file -> what is wrong: unexpected issues, or a listed exception that no longer fails as listed."""
    expected = {name: [re.compile(p) for p in e["expressions"]] for e in exceptions for name in e["files"]}
    problems = {}
    for name, resource in resources.items():
        found = expressions(resource)
        patterns = expected.get(name, [])
        unexpected = [x for x in found if not any(p.fullmatch(x) for p in patterns)]
        unmatched = [p.pattern for p in patterns if not any(p.fullmatch(x) for x in found)]
        if unexpected or unmatched:
            problems[name] = unexpected + [f"listed but not found: {p}" for p in unmatched]
    assert set(expected) <= set(resources), "validation_exceptions.json names files that are not in the package"
    return problems


def test_examples_package_has_719_non_definitional_resources_of_125_types(package, definitional_types):
    # The data README's "720 of 126 types" counts file-name prefixes: ig-r4.json (the spec's own
    # ImplementationGuide, a definitional resource) then looks like a 126th type "ig".
    assert len(definitional_types) == 15
    examples = split(package, definitional_types, False)
    assert len(examples) == 719
    assert len({r["resourceType"] for r in examples.values()}) == 125
    assert package["ig-r4.json"]["resourceType"] == "ImplementationGuide"


def test_every_example_resource_validates(package, definitional_types):
    examples = split(package, definitional_types, False)
    assert check_all(examples, EXCEPTIONS["examples"]) == {}


def test_every_definitional_resource_validates(package, definitional_types):
    definitional = split(package, definitional_types, True)
    assert len(definitional) == 5306 - 719
    assert check_all(definitional, EXCEPTIONS["definitional"]) == {}


# -- Synthea -----------------------------------------------------------------------------------

def test_every_synthea_resource_validates():
    count, problems = 0, {}
    with tarfile.open(shared_file("synthea-r4-bulk-data-server-100p.tar.gz")) as tar:
        for member in tar:
            if not member.name.endswith(".json"):
                continue
            doc = orjson.loads(tar.extractfile(member).read())
            entries = [e["resource"] for e in doc["entry"]] if doc["resourceType"] == "Bundle" else [doc]
            for resource in entries:
                count += 1
                found = expressions(resource)
                if found:
                    problems[f"{resource['resourceType']}/{resource.get('id')}"] = found
    assert count == 38971
    assert problems == {}


# -- what a caller sees ------------------------------------------------------------------------

def test_bad_gender_is_rejected_naming_the_element():
    with pytest.raises(InvalidResource) as caught:
        validate({"resourceType": "Patient", "gender": "robot"})
    (issue,) = caught.value.issues
    assert issue.expression == "Patient.gender"
    assert issue.code == "code-invalid"
    assert "robot" in issue.diagnostics and "administrative-gender" in issue.diagnostics
    assert caught.value.status == 400
    assert caught.value.outcome()["issue"][0]["expression"] == ["Patient.gender"]


def test_valid_resource_passes():
    validate({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-02-29",
              "name": [{"family": "Li", "given": ["Wei"]}], "active": True})


def test_all_problems_are_reported_at_once():
    found = expressions({"resourceType": "Patient", "gender": "robot", "birthDate": "1980-13-01", "foo": 1})
    assert found == ["Patient.gender", "Patient.birthDate", "Patient.foo"]


def test_issues_are_capped():
    patient = {"resourceType": "Patient", "name": [{"family": ""} for _ in range(200)]}
    assert len(issues(patient)) == MAX_ISSUES


def test_resource_types_are_the_146_r4_types():
    types = resource_types()
    assert len(types) == 146
    assert {"Patient", "Bundle", "Parameters", "Binary", "MedicinalProduct"} <= types
    assert not {"DomainResource", "Resource", "HumanName"} & types


# -- resourceType and unknown elements ---------------------------------------------------------

@pytest.mark.parametrize("resource, expression", [
    ({"resourceType": "Patiant"}, "Resource.resourceType"),
    ({"resourceType": "DomainResource"}, "Resource.resourceType"),
    ({"id": "x"}, "Resource"),
])
def test_unknown_resource_type(resource, expression):
    assert expressions(resource) == [expression]


def test_non_object_is_rejected():
    assert [i.diagnostics for i in issues(["Patient"])] == ["A resource must be a JSON object"]


@pytest.mark.parametrize("resource, expression", [
    ({"resourceType": "Patient", "foo": 1}, "Patient.foo"),
    ({"resourceType": "Patient", "name": [{"family": "Li", "surname": "Li"}]}, "Patient.name[0].surname"),
    ({"resourceType": "Patient", "deceasedString": "yes"}, "Patient.deceasedString"),
    ({"resourceType": "Patient", "_name": [{"id": "a"}]}, "Patient._name"),
    ({"resourceType": "Patient", "fhir_comments": ["DSTU2 only"]}, "Patient.fhir_comments"),
    ({"resourceType": "Patient", "contact": [{"name": {"family": "Li"}, "resourceType": "Patient"}]},
     "Patient.contact[0].resourceType"),
])
def test_unknown_element(resource, expression):
    assert expressions(resource) == [expression]


# -- cardinality -------------------------------------------------------------------------------

@pytest.mark.parametrize("resource, expression", [
    ({"resourceType": "Patient", "gender": ["male"]}, "Patient.gender"),
    ({"resourceType": "Patient", "name": {"family": "Li"}}, "Patient.name"),
    ({"resourceType": "Patient", "name": []}, "Patient.name"),
    ({"resourceType": "Patient", "maritalStatus": {}}, "Patient.maritalStatus"),
    ({"resourceType": "Patient", "link": [{"type": "seealso"}]}, "Patient.link[0].other"),
])
def test_cardinality(resource, expression):
    assert expressions(resource) == [expression]


def test_missing_required_elements():
    assert expressions({"resourceType": "Observation"}) == ["Observation.status", "Observation.code"]


def test_required_choice_is_met_by_any_variant():
    item = {"linkId": "1", "type": "boolean", "enableWhen": [{"question": "0", "operator": "exists"}]}
    questionnaire = {"resourceType": "Questionnaire", "status": "draft", "item": [item]}
    assert expressions(questionnaire) == ["Questionnaire.item[0].enableWhen[0].answer[x]"]
    item["enableWhen"][0]["answerBoolean"] = True
    assert expressions(questionnaire) == []


# -- primitives --------------------------------------------------------------------------------

@pytest.mark.parametrize("element, value", [
    ("birthDate", "1980-13-01"),
    ("birthDate", "1981-02-29"),
    ("birthDate", "1980-1-1"),
    ("birthDate", "01/02/1980"),
    ("birthDate", 1980),
    ("deceasedDateTime", "2020-01-01T10:00:00"),  # a time needs a zone
    ("deceasedDateTime", "2020-04-31"),
    ("active", "true"),
    ("multipleBirthInteger", 2.5),
    ("multipleBirthInteger", 2147483648),
    ("multipleBirthBoolean", 1),
    ("id", "has space"),
    ("id", "x" * 65),
    ("implicitRules", "http://example.org/a b"),
    ("language", " en"),
    ("gender", None),
])
def test_bad_primitive(element, value):
    found = issues({"resourceType": "Patient", element: value})
    assert [i.expression for i in found] == [f"Patient.{element}"]
    assert "expected" in found[0].diagnostics or "leave the element out" in found[0].diagnostics


@pytest.mark.parametrize("element, value", [
    ("birthDate", "1980"), ("birthDate", "1980-02"), ("birthDate", "2000-02-29"),
    ("deceasedDateTime", "2020-01-01T10:00:00.123+08:00"), ("deceasedDateTime", "2020-01-01T10:00:00Z"),
    ("multipleBirthInteger", -3), ("id", "a-b.C9"), ("language", "zh-CN"),
])
def test_good_primitive(element, value):
    assert expressions({"resourceType": "Patient", element: value}) == []


@pytest.mark.parametrize("resource, expression", [
    ({"resourceType": "Patient", "name": [{"family": ""}]}, "Patient.name[0].family"),
    ({"resourceType": "Patient", "name": [{"given": ["Wei", 7]}]}, "Patient.name[0].given[1]"),
    ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": "7"}},
     "Observation.valueQuantity.value"),
    ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "issued": "2020-01-01"},
     "Observation.issued"),
    ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueTime": "25:00:00"},
     "Observation.valueTime"),
    ({"resourceType": "Binary", "contentType": "text/plain", "data": "abc"}, "Binary.data"),
    ({"resourceType": "Patient", "photo": [{"url": "a b"}]}, "Patient.photo[0].url"),
    ({"resourceType": "Patient", "contact": [{"telecom": [{"rank": 0}]}]}, "Patient.contact[0].telecom[0].rank"),
])
def test_bad_primitive_in_datatypes(resource, expression):
    assert expressions(resource) == [expression]


@pytest.mark.parametrize("value, valid", [
    ({"valueOid": "urn:oid:2.16.840.1"}, True),
    ({"valueOid": "2.16.840.1"}, False),
    ({"valueUuid": "urn:uuid:0d2f6a8e-2c8b-4f5b-9f4a-1b2c3d4e5f60"}, True),
    ({"valueUuid": "urn:uuid:0D2F6A8E-2C8B-4F5B-9F4A-1B2C3D4E5F60"}, False),
    ({"valueBase64Binary": "aGVsbG8gd29ybGQ="}, True),
    ({"valueBase64Binary": "aGVsbG8gd29ybGQ"}, False),
    ({"valueUnsignedInt": 0}, True),
    ({"valuePositiveInt": 0}, False),
    ({"valueDecimal": 1e400}, False),
    ({"valueInstant": "2020-01-01T00:00:00+14:00"}, True),
    ({"valueInstant": "2020-01-01T00:00:00+15:00"}, False),
])
def test_primitive_formats_follow_the_r4_regexes(value, valid):
    basic = {"resourceType": "Basic", "code": {"text": "x"}, "extension": [{"url": "http://example.org/x", **value}]}
    assert expressions(basic) == ([] if valid else [f"Basic.extension[0].{next(iter(value))}"])


def test_unicode_whitespace_is_ordinary_text():
    # the spec's regexes are Java's: \s is ASCII whitespace, so a no-break space is content
    assert expressions({"resourceType": "Patient", "name": [{"family": "\u00a0Li\u3000"}]}) == []


# -- primitive extensions (_element) -----------------------------------------------------------

def test_primitive_extension_alone_and_beside_its_value():
    ext = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}
    assert expressions({"resourceType": "Patient", "_birthDate": ext}) == []
    assert expressions({"resourceType": "Patient", "birthDate": "1970", "_birthDate": ext}) == []
    assert expressions({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                        "valueString": "a", "_valueString": ext}) == []


def test_primitive_extension_arrays_line_up_with_their_values():
    ext = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    good = {"resourceType": "Patient", "name": [{"given": ["Wei", None], "_given": [None, ext]}]}
    assert expressions(good) == []
    assert expressions({"resourceType": "Patient", "name": [{"given": ["Wei", None]}]}) == ["Patient.name[0].given[1]"]
    assert expressions({"resourceType": "Patient", "name": [{"given": ["Wei"], "_given": [None, ext]}]}) == [
        "Patient.name[0]._given"]
    assert expressions({"resourceType": "Patient", "name": [{"given": [None], "_given": [None]}]}) == [
        "Patient.name[0].given[0]", "Patient.name[0]._given[0]"]


@pytest.mark.parametrize("value, expression", [
    ({"valueString": "x"}, "Patient._birthDate.valueString"),
    ("1970", "Patient._birthDate"),
    ({"extension": [{"valueString": "x"}]}, "Patient._birthDate.extension[0].url"),
])
def test_bad_primitive_extension(value, expression):
    assert expressions({"resourceType": "Patient", "_birthDate": value}) == [expression]


# -- choice types ------------------------------------------------------------------------------

def test_two_variants_of_one_choice_are_rejected():
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "valueString": "high", "valueQuantity": {"value": 7}}
    found = issues(observation)
    assert [i.expression for i in found] == ["Observation.valueQuantity"]
    assert "value[x]" in found[0].diagnostics


def test_choice_variant_must_be_an_allowed_type():
    # Observation.value[x] allows no Reference; effective[x] no date
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "valueReference": {"reference": "Patient/1"}, "effectiveDate": "2020-01-01"}
    assert expressions(observation) == ["Observation.valueReference", "Observation.effectiveDate"]


def test_choice_with_a_profiled_type_keeps_the_json_name_and_the_profile():
    # Dosage.doseAndRate.dose[x] is Range | SimpleQuantity: written doseQuantity, without a comparator
    dose = {"doseQuantity": {"value": 1, "unit": "tablet"}}
    statement = {"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": "Patient/1"},
                 "medicationCodeableConcept": {"text": "x"}, "dosage": [{"doseAndRate": [dose]}]}
    assert expressions(statement) == []
    dose["doseQuantity"]["comparator"] = "<"
    assert expressions(statement) == ["MedicationStatement.dosage[0].doseAndRate[0].doseQuantity.comparator"]


# -- object vs primitive -----------------------------------------------------------------------

@pytest.mark.parametrize("resource, expression", [
    ({"resourceType": "Patient", "maritalStatus": "married"}, "Patient.maritalStatus"),
    ({"resourceType": "Patient", "name": ["Li Wei"]}, "Patient.name[0]"),
    ({"resourceType": "Patient", "managingOrganization": "Organization/1"}, "Patient.managingOrganization"),
    ({"resourceType": "Patient", "contained": ["Patient/1"]}, "Patient.contained[0]"),
    ({"resourceType": "Patient", "gender": {"code": "male"}}, "Patient.gender"),
])
def test_wrong_json_kind(resource, expression):
    assert expressions(resource) == [expression]


# -- references --------------------------------------------------------------------------------

@pytest.mark.parametrize("reference", [
    "Organization/1", "Organization/1/_history/2", "#org1", "urn:uuid:0d2f6a8e-2c8b-4f5b-9f4a-1b2c3d4e5f60",
    "http://example.org/fhir/Organization/1", "Organization?identifier=http://example.org/org|42",
])
def test_reference_shapes_accepted(reference):
    assert expressions({"resourceType": "Patient", "managingOrganization": {"reference": reference}}) == []


@pytest.mark.parametrize("reference", [
    "Organization/", "Organization/has space", "Organisation/1", "1", "../Organization/1", "Organization/" + "x" * 65,
])
def test_bad_reference_shapes(reference):
    found = issues({"resourceType": "Patient", "managingOrganization": {"reference": reference}})
    assert [i.expression for i in found] == ["Patient.managingOrganization.reference"]


def test_reference_to_a_disallowed_type():
    found = issues({"resourceType": "Patient", "managingOrganization": {"reference": "Practitioner/1"},
                    "generalPractitioner": [{"reference": "Practitioner/1"}, {"reference": "Patient/2"}]})
    assert [i.expression for i in found] == ["Patient.managingOrganization.reference",
                                             "Patient.generalPractitioner[1].reference"]
    assert "Organization" in found[0].diagnostics


def test_reference_type_element_must_be_allowed():
    found = expressions({"resourceType": "Patient", "managingOrganization": {"type": "Patient", "display": "x"}})
    assert found == ["Patient.managingOrganization.type"]


def test_reference_to_any_resource():
    # Provenance.target is Reference(Any)
    provenance = {"resourceType": "Provenance", "target": [{"reference": "Observation/1"}],
                  "recorded": "2020-01-01T00:00:00Z", "agent": [{"who": {"reference": "Practitioner/1"}}]}
    assert expressions(provenance) == []


# -- contained, Bundle and Parameters ----------------------------------------------------------

def test_contained_resources_are_validated():
    patient = {"resourceType": "Patient", "managingOrganization": {"reference": "#o"},
               "contained": [{"resourceType": "Organization", "id": "o", "active": "yes"},
                             {"resourceType": "Patient", "id": "p", "gender": "robot"},
                             {"resourceType": "Nonsense", "id": "n"},
                             {"id": "x"}]}
    assert expressions(patient) == ["Patient.contained[0].active", "Patient.contained[1].gender",
                                    "Patient.contained[2].resourceType", "Patient.contained[3]"]


def test_nested_contained_is_rejected():
    inner = {"resourceType": "Organization", "id": "o2"}
    patient = {"resourceType": "Patient",
               "contained": [{"resourceType": "Organization", "id": "o1", "contained": [inner]}]}
    assert expressions(patient) == ["Patient.contained[0].contained"]


def test_bundle_entries_are_validated():
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0d2f6a8e-2c8b-4f5b-9f4a-1b2c3d4e5f60",
         "resource": {"resourceType": "Patient", "gender": "robot"},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "urn:uuid:0d2f6a8e-2c8b-4f5b-9f4a-1b2c3d4e5f60"}},
         "request": {"method": "FETCH", "url": "Observation"}},
    ]}
    assert expressions(bundle) == ["Bundle.entry[0].resource.gender", "Bundle.entry[1].request.method"]


def test_bundle_type_is_required():
    assert expressions({"resourceType": "Bundle"}) == ["Bundle.type"]


def test_parameters_resources_are_validated():
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "birthDate": "yesterday"}},
        {"name": "count", "valueInteger": 3},
        {"name": "nested", "part": [{"name": "x", "valueFoo": 1}]},
    ]}
    assert expressions(parameters) == ["Parameters.parameter[0].resource.birthDate",
                                       "Parameters.parameter[2].part[0].valueFoo"]


# -- narrative and extensions ------------------------------------------------------------------

def test_narrative():
    assert expressions({"resourceType": "Patient", "text": {"status": "generated", "div": XHTML}}) == []
    found = expressions({"resourceType": "Patient", "text": {"status": "made-up", "div": "<div>x</div>"}})
    assert found == ["Patient.text.status", "Patient.text.div"]
    assert expressions({"resourceType": "Patient", "text": {"status": "generated"}}) == ["Patient.text.div"]


def test_extensions_need_a_url_and_take_any_value_type():
    patient = {"resourceType": "Patient", "extension": [
        {"url": "http://example.org/a", "valueHumanName": {"family": "Li"}},
        {"url": "http://example.org/b", "valueDosage": {"text": "once"}},
        {"url": "http://example.org/c", "extension": [{"url": "part", "valueCode": "x"}]},
    ], "modifierExtension": [{"valueBoolean": True}]}
    assert expressions(patient) == ["Patient.modifierExtension[0].url"]
    patient["extension"][0]["valueHumanName"] = "Li"
    assert expressions(patient)[0] == "Patient.extension[0].valueHumanName"


# -- required bindings -------------------------------------------------------------------------

def test_required_binding_on_codeable_concept_checks_system_and_code():
    clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/1"},
                 "clinicalStatus": {"coding": [{"system": clinical, "code": "active"}]}}
    assert expressions(condition) == []
    condition["clinicalStatus"] = {"coding": [{"system": "http://example.org", "code": "active"}]}
    assert expressions(condition) == ["Condition.clinicalStatus"]
    condition["clinicalStatus"] = {"coding": [{"system": clinical, "code": "better"}]}
    assert expressions(condition) == ["Condition.clinicalStatus"]
    condition["clinicalStatus"] = {"text": "active"}
    assert expressions(condition) == ["Condition.clinicalStatus"]
    # a translation beside the bound code is fine
    condition["clinicalStatus"] = {"coding": [{"system": "http://example.org", "code": "A"},
                                              {"system": clinical, "code": "remission"}]}
    assert expressions(condition) == []


def test_required_binding_in_datatypes_and_arrays():
    assert expressions({"resourceType": "Patient", "name": [{"use": "nickname"}, {"use": "alias"}]}) == [
        "Patient.name[1].use"]
    assert expressions({"resourceType": "Questionnaire", "status": "draft", "subjectType": ["Patient", "Human"]}) == [
        "Questionnaire.subjectType[1]"]


def test_open_value_sets_are_not_enforced():
    # mimetypes (BCP 13) cannot be enumerated: any code passes
    assert "http://hl7.org/fhir/ValueSet/mimetypes" in definitions.open_valuesets()
    assert expressions({"resourceType": "Binary", "contentType": "application/x-made-up"}) == []


# -- the packaged definitions ------------------------------------------------------------------

def test_definitions_are_loaded_and_cached():
    assert definitions.structures() is definitions.structures()
    assert definitions.structures()["primitives"]["id"]["regex"] == "[A-Za-z0-9\\-\\.]{1,64}"
    gender = definitions.valuesets()["http://hl7.org/fhir/ValueSet/administrative-gender"]
    assert [row[1] for row in gender] == ["male", "female", "other", "unknown"]
    params = definitions.search_parameters()
    assert len(params) == 1375
    birthdate = next(p for p in params if p["url"] == "http://hl7.org/fhir/SearchParameter/individual-birthdate")
    assert birthdate["code"] == "birthdate" and "Patient" in birthdate["base"] and birthdate["type"] == "date"
    assert "subject" in definitions.compartments()["Patient"]["Observation"]
    assert set(definitions.compartments()) == {"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}


def test_valuesets_keep_the_code_system_hierarchy():
    # v3 ActCode nests encounter classes under _ActEncounterCode
    rows = definitions.valuesets()["http://terminology.hl7.org/ValueSet/v3-ActEncounterCode"]
    parents = {row[1]: row[3] for row in rows if len(row) > 3}
    assert parents.get("AMB") == "_ActEncounterCode"


def test_absurdly_deep_nesting_is_an_issue_not_a_crash():
    item = root = {"linkId": "0", "type": "group"}
    for i in range(1, 2000):
        item["item"] = [{"linkId": str(i), "type": "group"}]
        item = item["item"][0]
    found = issues({"resourceType": "Questionnaire", "status": "draft", "item": [root]})
    assert [i.diagnostics for i in found] == ["The resource is nested too deeply to validate"]


def test_validation_does_not_change_the_resource():
    patient = {"resourceType": "Patient", "gender": "robot", "name": [{"given": ["a", None]}]}
    before = copy.deepcopy(patient)
    issues(patient)
    assert patient == before
