"""PATCH: the official FHIR Patch and JSON Patch cases, then the rules IHS adds around them.

The official cases are read in place from fhirpath-and-patch-tests-r4.tar.gz (fhir-test-cases):
- r4/patch/fhir-patch-tests.xml: input / Parameters / output triples in FHIR XML, or an
  expected error. The XML is turned into FHIR JSON by the small converter below, which takes
  element cardinality and primitive types from the R4 StructureDefinitions in the examples
  package; the patches run with apply_fhir_patch's default (packaged) cardinality lookup.
- r4/patch/json-patch-tests.json: the RFC 6902 appendix examples, with expected errors.
Every case runs; none is skipped. xml-patch-tests.xml in the same folder tests RFC 5261 XML
Patch, which IHS does not offer, so it is not read.
"""
from __future__ import annotations

import copy
import functools
import json
import re
import tarfile
import xml.etree.ElementTree as ET

import pytest

from ihs.fhir.errors import FhirError
from ihs.fhir.patch import apply_fhir_patch, apply_json_patch
from tests.shared_data import SHARED_DATA, shared_file

PATCH_ARCHIVE = "fhirpath-and-patch-tests-r4.tar.gz"
EXAMPLES_PACKAGE = "hl7.fhir.r4.examples-4.0.1.tgz"
FHIR = "{http://hl7.org/fhir}"
XHTML = "http://www.w3.org/1999/xhtml"


# ---------------------------------------------------------------- the official cases

@functools.cache
def _archive_member(suffix: str) -> bytes:
    with tarfile.open(SHARED_DATA / PATCH_ARCHIVE) as archive:
        for member in archive:
            if member.name.endswith(suffix):
                return archive.extractfile(member).read()
    raise FileNotFoundError(suffix)


@functools.cache
def fhir_cases() -> dict[str, ET.Element]:
    root = ET.fromstring(_archive_member("r4/patch/fhir-patch-tests.xml"))
    return {case.get("name"): case for case in root.iter("case")}


@functools.cache
def json_cases() -> dict[str, dict]:
    return {case["comment"]: case for case in json.loads(_archive_member("r4/patch/json-patch-tests.json"))}


def _names(cases) -> list[str]:
    # read at collection time only when the data is there; the test itself skips otherwise
    return list(cases()) if (SHARED_DATA / PATCH_ARCHIVE).exists() else ["(shared data absent)"]


def test_the_archive_holds_all_official_cases():
    shared_file(PATCH_ARCHIVE)
    assert len(fhir_cases()) == 33
    assert len(json_cases()) == 16


@pytest.mark.parametrize("name", _names(fhir_cases))
def test_official_fhir_patch_case(name):
    shared_file(PATCH_ARCHIVE)
    definitions = Definitions.load()
    case = fhir_cases()[name]
    resource = definitions.resource(case.find("input"))
    patch = definitions.resource(case.find("diff"))
    before = copy.deepcopy(resource)
    if case.find("error") is not None:
        with pytest.raises(FhirError) as raised:
            apply_fhir_patch(resource, patch)
        assert raised.value.status == 422
        assert case.find("error").get("msg") in str(raised.value)
    else:
        patched = apply_fhir_patch(resource, patch)
        assert _canonical_divs(patched) == _canonical_divs(definitions.resource(case.find("output")))
    assert resource == before


@pytest.mark.parametrize("name", _names(json_cases))
def test_official_json_patch_case(name):
    shared_file(PATCH_ARCHIVE)
    case = json_cases()[name]
    before = copy.deepcopy(case["doc"])
    if "error" in case:
        with pytest.raises(FhirError) as raised:
            apply_json_patch(case["doc"], case["patch"])
        assert raised.value.status == 422
    else:
        assert apply_json_patch(case["doc"], case["patch"]) == case["expected"]
    assert case["doc"] == before


def _canonical_divs(value):
    """Narrative divs compared as canonical XML, so serialisation details do not matter."""
    if isinstance(value, dict):
        return {k: ET.canonicalize(v) if k == "div" and isinstance(v, str) else _canonical_divs(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_divs(v) for v in value]
    return value


# ---------------------------------------------------------------- FHIR XML -> FHIR JSON

class Definitions:
    """Element cardinality and types from the R4 StructureDefinitions (base specialisations)."""

    def __init__(self, elements: dict[str, dict]):
        self.elements = elements

    @classmethod
    @functools.cache
    def load(cls) -> Definitions:
        elements: dict[str, dict] = {}
        with tarfile.open(shared_file(EXAMPLES_PACKAGE)) as package:
            for member in package:
                if not re.fullmatch(r"package/StructureDefinition-[^/]+\.json", member.name):
                    continue
                definition = json.load(package.extractfile(member))
                if definition.get("kind") in ("resource", "complex-type") and \
                        definition.get("derivation") != "constraint":
                    for element in definition["snapshot"]["element"]:
                        elements[element["path"]] = {
                            "max": element.get("max"),
                            "types": [t["code"] for t in element.get("type", [])],
                            "ref": element.get("contentReference", "").lstrip("#") or None,
                        }
        for path in list(elements):
            parent = path.rpartition(".")[0]
            if parent in elements:
                elements[parent]["backbone"] = True
        return cls(elements)

    def repeats(self, element: str) -> bool:
        """Whether the element at this definition path may repeat (max > 1)."""
        return self.elements.get(element, {}).get("max", "1") != "1"

    def child(self, type_path: str, name: str) -> tuple[str, str]:
        """(definition path, type path of the child) for XML element `name` inside `type_path`."""
        path = f"{type_path}.{name}"
        if path in self.elements:
            types = self.elements[path]["types"]
            kind = types[0] if types else ""
        else:
            cut = next(i for i in range(len(name) - 1, 0, -1)
                       if name[i].isupper() and f"{type_path}.{name[:i]}[x]" in self.elements)
            path = f"{type_path}.{name[:cut]}[x]"
            kind = next(t for t in self.elements[path]["types"] if t.lower() == name[cut:].lower())
        definition = self.elements[path]
        if definition["ref"]:
            return path, definition["ref"]
        if definition.get("backbone"):
            return path, path
        return path, "string" if kind.startswith("http://hl7.org/fhirpath/System.") else kind

    def resource(self, holder: ET.Element) -> dict:
        """The FHIR JSON of the one resource inside `holder`."""
        element = next(iter(holder))
        resource_type = element.tag.removeprefix(FHIR)
        return {"resourceType": resource_type, **self.content(element, resource_type)}

    def content(self, element: ET.Element, type_path: str) -> dict:
        out: dict = {key: element.get(key) for key in ("id", "url") if element.get(key) is not None}
        for child in element:
            name = child.tag.rpartition("}")[2]  # Narrative.div is in the XHTML namespace
            path, kind = self.child(type_path, name)
            value, companion = self.value(child, kind)
            if self.repeats(path):
                out.setdefault(name, []).append(value)
                out.setdefault("_" + name, []).append(companion)
            else:
                out[name], out["_" + name] = value, companion
        return {k: v for k, v in out.items()
                if not (k.startswith("_") and (v is None or (isinstance(v, list) and not any(v))))}

    def value(self, element: ET.Element, kind: str) -> tuple:
        """(JSON value, `_name` companion) of one XML element of type `kind`."""
        if kind == "xhtml":
            element.tail = None
            return ET.tostring(element, encoding="unicode", default_namespace=XHTML), None
        if kind == "Resource":
            return self.resource(element), None
        if kind[:1].islower():
            text, extras = element.get("value"), self.content(element, "Element") or None
            if kind in ("integer", "positiveInt", "unsignedInt"):
                return int(text), extras
            if kind == "decimal":
                return float(text), extras
            if kind == "boolean":
                return text == "true", extras
            return text, extras
        return self.content(element, kind), None


def test_converter_reads_primitive_extensions_and_repeating_elements():
    shared_file(PATCH_ARCHIVE)
    case = fhir_cases()["Consecutive operations"]
    patient = Definitions.load().resource(case.find("input"))
    assert patient["contact"][0]["name"]["family"] == "du Marché"
    assert patient["contact"][0]["name"]["_family"]["extension"][0]["valueString"] == "WW"
    assert patient["contact"][0]["name"]["given"] == ["Bénédicte"]


# ---------------------------------------------------------------- JSON Patch rules

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {"use": "official", "system": "urn:oid:2.16.156.10011.1.1", "value": "110101199003074258"},
        {"use": "usual", "system": "http://ihs.example/mrn", "value": "MRN-7"},
    ],
    "name": [{"use": "official", "family": "王", "given": ["小", "明"], "_given": [None, {"id": "g2"}]}],
    "gender": "male",
    "birthDate": "1990-03-07",
}


def json_error(operations, resource=PATIENT) -> FhirError:
    with pytest.raises(FhirError) as raised:
        apply_json_patch(resource, operations)
    return raised.value


def test_json_patch_add_with_dash_appends_and_leaves_the_input_untouched():
    before = copy.deepcopy(PATIENT)
    patched = apply_json_patch(PATIENT, [{"op": "add", "path": "/name/0/given/-", "value": "强"}])
    assert patched["name"][0]["given"] == ["小", "明", "强"]
    assert PATIENT == before


def test_json_patch_pointer_unescapes_tilde_one_before_tilde_zero():
    basic = {"resourceType": "Basic", "id": "b", "a/b": {"m~n": 1, "~1": 2}}
    patched = apply_json_patch(basic, [{"op": "replace", "path": "/a~1b/m~0n", "value": 3},
                                       {"op": "remove", "path": "/a~1b/~01"}])
    assert patched["a/b"] == {"m~n": 3}


def test_json_patch_move_and_copy_between_elements():
    patched = apply_json_patch(PATIENT, [{"op": "copy", "from": "/identifier/1", "path": "/identifier/0"},
                                         {"op": "move", "from": "/birthDate", "path": "/deceasedDateTime"}])
    assert [i["value"] for i in patched["identifier"]] == ["MRN-7", "110101199003074258", "MRN-7"]
    assert "birthDate" not in patched and patched["deceasedDateTime"] == "1990-03-07"


def test_json_patch_failed_test_is_422_naming_the_operation_and_path():
    error = json_error([{"op": "test", "path": "/gender", "value": "male"},
                        {"op": "test", "path": "/name/0/family", "value": "李"}])
    assert error.status == 422
    assert "operation 1" in str(error) and "/name/0/family" in str(error)
    assert error.issues[0].expression == "Patient.name[0].family"


def test_json_patch_test_compares_json_types():
    counted = {"resourceType": "Basic", "id": "b", "n": 1, "flag": True}
    assert apply_json_patch(counted, [{"op": "test", "path": "/n", "value": 1.0}]) == counted
    assert json_error([{"op": "test", "path": "/n", "value": True}], counted).status == 422
    assert json_error([{"op": "test", "path": "/flag", "value": 1}], counted).status == 422


@pytest.mark.parametrize("json_op", [
    {"op": "replace", "path": "/name/3/family", "value": "李"},
    {"op": "remove", "path": "/telecom"},
    {"op": "add", "path": "/contact/0/gender", "value": "female"},
    {"op": "add", "path": "/identifier/3", "value": {"value": "x"}},
    {"op": "replace", "path": "/identifier/01/value", "value": "x"},
    {"op": "move", "from": "/address", "path": "/x"},
])
def test_json_patch_path_that_does_not_exist_is_422(json_op):
    assert json_error([json_op]).status == 422


@pytest.mark.parametrize("operations", [
    {"op": "add", "path": "/gender", "value": "male"},
    [{"op": "frobnicate", "path": "/gender"}],
    [{"path": "/gender", "value": "female"}],
    [{"op": "replace", "path": "/gender"}],
    [{"op": "replace", "path": "gender", "value": "female"}],
    [{"op": "replace", "path": "/name/0/fa~2mily", "value": "李"}],
    [{"op": "copy", "path": "/x"}],
    [{"op": "move", "from": "/name/0", "path": "/name/0/given/0"}],
    ["add"],
])
def test_json_patch_malformed_document_is_400(operations):
    assert json_error(operations).status == 400


@pytest.mark.parametrize("json_op, expression", [
    ({"op": "replace", "path": "/id", "value": "p2"}, "Patient.id"),
    ({"op": "remove", "path": "/id"}, "Patient.id"),
    ({"op": "move", "from": "/id", "path": "/text"}, "Patient.id"),
    ({"op": "replace", "path": "/resourceType", "value": "Practitioner"}, "Patient.resourceType"),
    ({"op": "replace", "path": "", "value": {"resourceType": "Patient", "id": "other"}}, "Patient.id"),
])
def test_json_patch_must_not_change_id_or_resource_type(json_op, expression):
    error = json_error([json_op])
    assert error.status == 400
    assert error.issues[0].expression == expression


def test_json_patch_may_write_the_same_id_and_replace_the_whole_resource_keeping_it():
    replacement = {"resourceType": "Patient", "id": "p1", "active": False}
    assert apply_json_patch(PATIENT, [{"op": "replace", "path": "/id", "value": "p1"},
                                      {"op": "replace", "path": "", "value": replacement}]) == replacement


# ---------------------------------------------------------------- FHIR Patch rules

REPEATING = frozenset({"Patient.identifier", "Patient.name", "Patient.telecom", "Patient.contact",
                       "Patient.contact.telecom", "HumanName.given", "Observation.component"}).__contains__


def operation(kind: str, path: str, **parts) -> dict:
    """One `operation` parameter; keyword parts are (part name -> {value[x]: ...} or list of parts)."""
    made = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        made.append({"name": name, "part": value} if isinstance(value, list) else {"name": name, **value})
    return {"name": "operation", "part": made}


def parameters(*operations: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def fhir_patch(resource: dict, *operations: dict) -> dict:
    return apply_fhir_patch(resource, parameters(*operations), REPEATING)


def fhir_error(resource: dict, *operations: dict) -> FhirError:
    with pytest.raises(FhirError) as raised:
        fhir_patch(resource, *operations)
    return raised.value


def test_fhir_patch_where_and_first_select_the_element_to_change():
    patched = fhir_patch(
        PATIENT,
        operation("replace", "Patient.identifier.where(system = 'http://ihs.example/mrn').value",
                  value={"valueString": "MRN-8"}),
        operation("replace", "Patient.name.where(use = 'official').given.first()",
                  value={"valueString": "大"}))
    assert patched["identifier"][1]["value"] == "MRN-8"
    assert patched["name"][0]["given"] == ["大", "明"]
    assert PATIENT["identifier"][1]["value"] == "MRN-7"


def test_fhir_patch_add_appends_to_a_list_and_creates_one_when_the_element_repeats():
    patched = fhir_patch(PATIENT,
                         operation("add", "Patient", name={"valueString": "identifier"},
                                   value={"valueIdentifier": {"value": "3"}}),
                         operation("add", "Patient", name={"valueString": "telecom"},
                                   value={"valueContactPoint": {"system": "phone", "value": "139"}}))
    assert patched["identifier"][-1] == {"value": "3"}
    assert patched["telecom"] == [{"system": "phone", "value": "139"}]


def test_fhir_patch_add_builds_anonymous_types_from_parts():
    contact = [{"name": "name", "valueHumanName": {"text": "李四"}},
               {"name": "telecom", "valueContactPoint": {"system": "phone", "value": "13800000000"}}]
    patched = fhir_patch(PATIENT, operation("add", "Patient", name={"valueString": "contact"},
                                            value=contact))
    assert patched["contact"] == [{"name": {"text": "李四"},
                                   "telecom": [{"system": "phone", "value": "13800000000"}]}]


def test_fhir_patch_add_to_an_element_that_exists_and_does_not_repeat_is_422():
    error = fhir_error(PATIENT, operation("add", "Patient", name={"valueString": "gender"},
                                          value={"valueCode": "female"}))
    assert error.status == 422 and "use replace" in str(error)


def test_fhir_patch_insert_and_move_within_a_list():
    patched = fhir_patch(PATIENT,
                         operation("insert", "Patient.name[0].given", value={"valueString": "阿"},
                                   index={"valueInteger": 0}),
                         operation("move", "Patient.identifier", source={"valueInteger": 1},
                                   destination={"valueInteger": 0}))
    assert patched["name"][0]["given"] == ["阿", "小", "明"]
    assert patched["name"][0]["_given"] == [None, None, {"id": "g2"}]
    assert [i["use"] for i in patched["identifier"]] == ["usual", "official"]


def test_fhir_patch_insert_at_zero_creates_an_absent_list():
    email = {"system": "email", "value": "a@b.cn"}
    patched = fhir_patch(PATIENT, operation("insert", "Patient.telecom", index={"valueInteger": 0},
                                            value={"valueContactPoint": email}))
    assert patched["telecom"] == [email]


@pytest.mark.parametrize("op", [
    operation("insert", "Patient.identifier", value={"valueIdentifier": {}}, index={"valueInteger": 3}),
    operation("insert", "Patient.maritalStatus", value={"valueCodeableConcept": {"text": "married"}},
              index={"valueInteger": 0}),
    operation("move", "Patient.identifier", source={"valueInteger": 2}, destination={"valueInteger": 0}),
    operation("move", "Patient.gender", source={"valueInteger": 0}, destination={"valueInteger": 0}),
    operation("replace", "Patient.maritalStatus", value={"valueCodeableConcept": {"text": "married"}}),
    operation("replace", "Patient.identifier.value", value={"valueString": "x"}),
    operation("delete", "Patient.identifier"),
    operation("add", "Patient.birthDate", name={"valueString": "extension"}, value={"valueString": "x"}),
])
def test_fhir_patch_path_or_index_that_does_not_fit_the_resource_is_422(op):
    error = fhir_error(PATIENT, op)
    assert error.status == 422
    assert error.issues[0].expression == op["part"][1]["valueString"]


def test_fhir_patch_delete_of_a_missing_element_changes_nothing():
    assert fhir_patch(PATIENT, operation("delete", "Patient.telecom.where(system = 'fax')")) == PATIENT


def test_fhir_patch_delete_keeps_primitive_extensions_in_step():
    patched = fhir_patch(PATIENT, operation("delete", "Patient.name[0].given[0]"))
    assert patched["name"][0]["given"] == ["明"] and patched["name"][0]["_given"] == [{"id": "g2"}]
    patched = fhir_patch(PATIENT, operation("delete", "Patient.name[0].given[1]"))
    assert patched["name"][0]["given"] == ["小"] and "_given" not in patched["name"][0]


def test_fhir_patch_value_brings_its_primitive_extension():
    birth_time = {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                  "valueDateTime": "1990-03-07T08:30:00+08:00"}
    patched = fhir_patch(PATIENT, operation("replace", "Patient.birthDate", value={
        "valueDate": "1990-03-07", "_valueDate": {"extension": [birth_time]}}))
    assert patched["_birthDate"]["extension"][0]["valueDateTime"] == "1990-03-07T08:30:00+08:00"


def mm_hg(value: float) -> dict:
    return {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}


OBSERVATION = {
    "resourceType": "Observation", "id": "bp", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": mm_hg(150)},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": mm_hg(95)},
    ],
    "extension": [{"url": "http://ihs.example/fhir/StructureDefinition/device-id", "valueString": "cuff-17"}],
}


def test_fhir_patch_navigates_choice_elements_by_their_fhirpath_name():
    patched = fhir_patch(
        OBSERVATION,
        operation("replace", "Observation.component.where(code.coding.code = '8462-4').value.value",
                  value={"valueDecimal": 92}),
        operation("replace", "Observation.component[0].value.ofType(Quantity)",
                  value={"valueString": "not measured"}))
    assert patched["component"][1]["valueQuantity"]["value"] == 92
    assert patched["component"][0]["valueString"] == "not measured"
    assert "valueQuantity" not in patched["component"][0]


def test_fhir_patch_add_to_a_choice_element_names_it_by_the_value_type():
    patched = fhir_patch(OBSERVATION, operation("add", "Observation", name={"valueString": "effective"},
                                                value={"valueDateTime": "2026-10-30T09:00:00+08:00"}))
    assert patched["effectiveDateTime"] == "2026-10-30T09:00:00+08:00"
    error = fhir_error(OBSERVATION, operation("add", "Observation.component[0]",
                                              name={"valueString": "value"}, value={"valueString": "x"}))
    assert error.status == 422


def test_fhir_patch_extension_function_selects_by_url():
    patched = fhir_patch(OBSERVATION, operation(
        "replace", "Observation.extension('http://ihs.example/fhir/StructureDefinition/device-id').value",
        value={"valueString": "cuff-18"}))
    assert patched["extension"][0]["valueString"] == "cuff-18"


def test_fhir_patch_last_item_of_a_list_deleted_removes_the_list():
    patched = fhir_patch(OBSERVATION, operation("delete", "Observation.extension.last()"))
    assert "extension" not in patched


@pytest.mark.parametrize("op, expression", [
    (operation("replace", "Patient.id", value={"valueId": "p2"}), "Patient.id"),
    (operation("delete", "Patient.id"), "Patient.id"),
    (operation("add", "Patient", name={"valueString": "resourceType"}, value={"valueString": "X"}),
     "Patient.resourceType"),
])
def test_fhir_patch_must_not_change_id_or_resource_type(op, expression):
    error = fhir_error(PATIENT, op)
    assert error.status == 400
    assert error.issues[0].expression == expression


@pytest.mark.parametrize("document", [
    {"resourceType": "Bundle"},
    {"resourceType": "Parameters", "parameter": {"name": "operation"}},
    parameters({"name": "op", "part": []}),
    parameters({"name": "operation", "part": [{"name": "path", "valueString": "Patient.gender"}]}),
    parameters(operation("upsert", "Patient.gender")),
    parameters(operation("replace", "Patient.gender")),
    parameters(operation("add", "Patient", value={"valueCode": "male"})),
    parameters(operation("insert", "Patient.name", value={"valueHumanName": {}}, index={"valueString": "0"})),
    parameters(operation("delete", "Patient.name[0")),
    parameters(operation("delete", "Patient..name")),
    parameters(operation("delete", "Patient.name.exists()")),
    parameters(operation("delete", "Patient.generalPractitioner.resolve().name")),
    parameters(operation("delete", "Patient.name.where(nosuchfunction())")),
    parameters(operation("delete", "Patient")),
])
def test_fhir_patch_malformed_document_is_400(document):
    with pytest.raises(FhirError) as raised:
        apply_fhir_patch(PATIENT, document, REPEATING)
    assert raised.value.status == 400


def test_fhir_patch_error_names_the_operation_index_and_path():
    error = fhir_error(PATIENT, operation("delete", "Patient.gender"),
                       operation("replace", "Patient.gender", value={"valueCode": "female"}))
    assert "operation 1" in str(error) and "Patient.gender" in str(error)


def test_fhir_patch_by_default_knows_which_r4_elements_repeat():
    phone = {"valueContactPoint": {"value": "1"}}
    patched = apply_fhir_patch({"resourceType": "Patient", "id": "p2"}, parameters(
        operation("add", "Patient", name={"valueString": "telecom"}, value=phone),
        operation("add", "Patient", name={"valueString": "active"}, value={"valueBoolean": True}),
        operation("add", "Patient", name={"valueString": "contact"}, value=[
            {"name": "telecom", "valueContactPoint": {"value": "2"}}])))
    assert patched == {"resourceType": "Patient", "id": "p2", "telecom": [{"value": "1"}], "active": True,
                       "contact": [{"telecom": [{"value": "2"}]}]}


def test_fhir_patch_follows_the_repeats_lookup_it_is_given():
    phone = {"valueContactPoint": {"value": "1"}}
    patched = apply_fhir_patch({"resourceType": "Patient", "id": "p2"}, parameters(
        operation("add", "Patient", name={"valueString": "telecom"}, value=phone)),
        repeats=lambda element: False)
    assert patched["telecom"] == {"value": "1"}
