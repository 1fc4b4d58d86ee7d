"""Index extraction: each parameter type's rows, and the fast path agreeing with fhirpathpy on the spec's examples."""
from __future__ import annotations

import json
import tarfile
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from ihs.fhir import indexing
from ihs.fhir.definitions import search_parameters
from ihs.fhir.fhirpath_compile import compile_fast, compile_fhirpath
from ihs.fhir.indexing import (CANONICAL_ROW, FAR_FUTURE, FAR_PAST, UCUM, canonical_quantity, date_bounds, extract,
                               extractors, normalize)
from ihs.fhir.searchparams import Registry, registry
from tests.shared_data import shared_file

UTC = timezone.utc
LOINC = "http://loinc.org"


def us(moment: datetime) -> int:
    """Microseconds since the epoch, computed with datetime as an independent reference."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def rows_of(resource: dict, table: str, code: str) -> list[tuple]:
    return [row[1:] for row in getattr(extract(resource), table) if row[0] == code]


# -- strings -----------------------------------------------------------------------------------

def test_normalize_lowers_and_removes_accents_but_keeps_cjk():
    assert normalize("Zoë Ångström-MÜLLER") == "zoe angstrom-muller"
    assert normalize("José") == "jose"
    assert normalize("ＡＢＣ１２") == "abc12"
    # generated names: Chinese, Japanese kana with dakuten, Korean Hangul keep their characters
    assert normalize("张伟 Zhāng Wěi") == "张伟 zhang wei"
    assert normalize("ガイド") == "ガイド"
    assert normalize("김민준") == "김민준"


def test_human_name_gives_family_given_prefix_suffix_and_text():
    patient = {"resourceType": "Patient", "name": [
        {"family": "Núñez", "given": ["María", "José"], "prefix": ["Dr."], "suffix": ["PhD"],
         "text": "Dr. María Núñez"},
        {"family": "王", "given": ["小明"]}]}
    assert sorted(rows_of(patient, "string", "name")) == sorted([
        ("nunez", "Núñez"), ("maria", "María"), ("jose", "José"), ("dr.", "Dr."), ("phd", "PhD"),
        ("dr. maria nunez", "Dr. María Núñez"), ("王", "王"), ("小明", "小明")])
    assert rows_of(patient, "string", "family") == [("nunez", "Núñez"), ("王", "王")]
    assert rows_of(patient, "string", "given") == [("maria", "María"), ("jose", "José"), ("小明", "小明")]


def test_address_gives_each_part():
    patient = {"resourceType": "Patient", "address": [{
        "line": ["No. 8 Jianguo Road", "Unit 3"], "city": "Chaoyang", "district": "Beijing East",
        "state": "Beijing", "postalCode": "100022", "country": "CN"}]}
    assert [v for v, _ in rows_of(patient, "string", "address")] == [
        "no. 8 jianguo road", "unit 3", "chaoyang", "beijing east", "beijing", "100022", "cn"]
    assert rows_of(patient, "string", "address-city") == [("chaoyang", "Chaoyang")]


# -- tokens ------------------------------------------------------------------------------------

def test_codeable_concept_gives_each_coding_and_its_text():
    observation = {"resourceType": "Observation", "status": "final", "code": {
        "coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"},
                   {"system": "http://snomed.info/sct", "code": "364075005"}],
        "text": "Pulse"}}
    assert rows_of(observation, "token", "code") == [
        (LOINC, "8867-4", "heart rate"), ("http://snomed.info/sct", "364075005", None), (None, None, "pulse")]
    assert rows_of(observation, "token", "status") == [(None, "final", None)]


def test_identifier_gives_system_value_and_of_type_rows():
    v2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
    patient = {"resourceType": "Patient", "identifier": [
        {"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "110101199003074514",
         "type": {"coding": [{"system": v2, "code": "NI"}], "text": "Resident ID"}},
        {"value": "A-17"}]}
    assert rows_of(patient, "token", "identifier") == [
        ("urn:oid:2.16.840.1.113883.2.4.6.3", "110101199003074514", "resident id"), (None, "A-17", None)]
    assert rows_of(patient, "token", "identifier:of-type") == [(v2, "NI|110101199003074514", None)]


def test_contact_points_boolean_and_code_primitives():
    patient = {"resourceType": "Patient", "active": False, "gender": "female", "telecom": [
        {"system": "phone", "value": "+86 10 5555 0101"}, {"system": "email", "value": "li.na@example.cn"}]}
    assert rows_of(patient, "token", "telecom") == [("phone", "+86 10 5555 0101", None),
                                                    ("email", "li.na@example.cn", None)]
    assert rows_of(patient, "token", "email") == [("email", "li.na@example.cn", None)]
    assert rows_of(patient, "token", "phone") == [("phone", "+86 10 5555 0101", None)]
    assert rows_of(patient, "token", "active") == [(None, "false", None)]
    assert rows_of(patient, "token", "gender") == [(None, "female", None)]


def test_meta_tag_security_profile_and_source_are_indexed_id_and_last_updated_are_not():
    patient = {"resourceType": "Patient", "id": "p1", "meta": {
        "versionId": "3", "lastUpdated": "2024-01-01T00:00:00Z", "source": "http://hospital.example/ehr",
        "profile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
        "tag": [{"system": "http://example.org/tags", "code": "vip"}],
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}}
    rows = extract(patient)
    assert ("_tag", "http://example.org/tags", "vip", None) in rows.token
    assert ("_security", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R", None) in rows.token
    assert ("_profile", "http://hl7.org/fhir/StructureDefinition/Patient") in rows.uri
    assert ("_source", "http://hospital.example/ehr") in rows.uri
    assert not [row for table in ("token", "date") for row in getattr(rows, table)
                if row[0] in ("_id", "_lastUpdated")]


def test_deceased_goes_through_fhirpathpy():
    deceased = next(e for e in extractors("Patient") if e.param.code == "deceased")
    assert not deceased.fast
    assert rows_of({"resourceType": "Patient"}, "token", "deceased") == [(None, "false", None)]
    assert rows_of({"resourceType": "Patient", "deceasedBoolean": True}, "token", "deceased") == [(None, "true", None)]
    assert rows_of({"resourceType": "Patient", "deceasedDateTime": "2020-05-01"}, "token", "deceased") == \
        [(None, "true", None)]


# -- references --------------------------------------------------------------------------------

def test_reference_forms():
    observation = {"resourceType": "Observation", "subject": {"reference": "Patient/123"}, "performer": [
        {"reference": "http://other.example/fhir/Practitioner/abc/_history/2"},
        {"reference": "urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
        {"reference": "#org1"},
        {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}},
        {"display": "someone"}]}
    assert rows_of(observation, "reference", "subject") == [("Patient", "123", "Patient/123")]
    assert rows_of(observation, "reference", "patient") == [("Patient", "123", "Patient/123")]
    assert rows_of(observation, "reference", "performer") == [
        ("Practitioner", "abc", "http://other.example/fhir/Practitioner/abc/_history/2"),
        (None, None, "urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        (None, None, "#org1")]
    assert rows_of(observation, "token", "performer:identifier") == [
        ("http://hl7.org/fhir/sid/us-npi", "1234567893", None)]


def test_where_resolve_is_filters_by_the_referenced_type():
    observation = {"resourceType": "Observation", "subject": {"reference": "Group/g1"}}
    assert rows_of(observation, "reference", "subject") == [("Group", "g1", "Group/g1")]
    assert rows_of(observation, "reference", "patient") == []
    typed = {"resourceType": "Observation", "subject": {"reference": "urn:uuid:1", "type": "Patient"}}
    assert rows_of(typed, "reference", "patient") == [(None, None, "urn:uuid:1")]


def test_canonical_reference_keeps_url_and_url_with_version():
    response = {"resourceType": "QuestionnaireResponse", "status": "completed",
                "questionnaire": "http://example.org/Questionnaire/phq-9|2.1"}
    assert rows_of(response, "reference", "questionnaire") == [
        (None, None, "http://example.org/Questionnaire/phq-9"),
        (None, None, "http://example.org/Questionnaire/phq-9|2.1")]


# -- dates -------------------------------------------------------------------------------------

def test_partial_dates_cover_their_whole_precision():
    assert date_bounds("2020") == (us(datetime(2020, 1, 1, tzinfo=UTC)), us(datetime(2021, 1, 1, tzinfo=UTC)))
    assert date_bounds("2020-02") == (us(datetime(2020, 2, 1, tzinfo=UTC)), us(datetime(2020, 3, 1, tzinfo=UTC)))
    assert date_bounds("2020-12") == (us(datetime(2020, 12, 1, tzinfo=UTC)), us(datetime(2021, 1, 1, tzinfo=UTC)))
    assert date_bounds("2020-02-29") == (us(datetime(2020, 2, 29, tzinfo=UTC)), us(datetime(2020, 3, 1, tzinfo=UTC)))
    second = us(datetime(2020, 3, 1, 10, 30, 15, tzinfo=UTC))
    assert date_bounds("2020-03-01T10:30:15Z") == (second, second + 1_000_000)
    assert date_bounds("2020-03-01T10:30:15.25Z") == (second + 250_000, second + 260_000)
    assert date_bounds("2020-03-01T10:30:15.123456Z") == (second + 123_456, second + 123_457)


def test_time_zones_are_normalized_to_utc_and_no_zone_means_utc():
    utc = us(datetime(2020, 1, 1, 2, 0, 0, tzinfo=UTC))
    assert date_bounds("2020-01-01T10:00:00+08:00")[0] == utc
    assert date_bounds("2019-12-31T21:00:00-05:00")[0] == utc
    assert date_bounds("2020-01-01T02:00:00")[0] == utc
    assert date_bounds("2020-01-01T02:00:00Z")[0] == utc


def test_years_0001_to_9999_and_invalid_dates():
    assert date_bounds("0001-01-01")[0] == FAR_PAST == us(datetime(1, 1, 1, tzinfo=UTC))
    assert date_bounds("9999-12-31") == (us(datetime(9999, 12, 31, tzinfo=UTC)), FAR_FUTURE)
    assert date_bounds("9999")[1] == FAR_FUTURE
    assert date_bounds("9999-12-31T23:59:59Z")[1] == FAR_FUTURE
    for invalid in ("2019-02-29", "2020-13", "2020-04-31", "0000", "2020-01-01T25:00:00Z", "yesterday", "20200101"):
        assert date_bounds(invalid) is None, invalid


def test_periods_timing_and_birthdate_rows():
    encounter = {"resourceType": "Encounter", "status": "in-progress", "class": {"code": "AMB"},
                 "period": {"start": "2024-03-01T08:00:00+08:00"}}
    start = us(datetime(2024, 3, 1, 0, 0, tzinfo=UTC))
    assert rows_of(encounter, "date", "date") == [(start, FAR_FUTURE)]
    ended = {**encounter, "period": {"end": "2024-03-02"}}
    assert rows_of(ended, "date", "date") == [(FAR_PAST, us(datetime(2024, 3, 3, tzinfo=UTC)))]
    observation = {"resourceType": "Observation", "effectiveTiming": {"event": ["2024-05-01", "2024-05-08"]}}
    assert rows_of(observation, "date", "date") == [
        (us(datetime(2024, 5, 1, tzinfo=UTC)), us(datetime(2024, 5, 2, tzinfo=UTC))),
        (us(datetime(2024, 5, 8, tzinfo=UTC)), us(datetime(2024, 5, 9, tzinfo=UTC)))]
    patient = {"resourceType": "Patient", "birthDate": "1984-06"}
    assert rows_of(patient, "date", "birthdate") == [
        (us(datetime(1984, 6, 1, tzinfo=UTC)), us(datetime(1984, 7, 1, tzinfo=UTC)))]


# -- numbers, quantities, uris -----------------------------------------------------------------

def test_number_from_decimal_and_range():
    assessment = {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/1"},
                  "prediction": [{"probabilityDecimal": 0.37},
                                 {"probabilityRange": {"low": {"value": 10}, "high": {"value": 20}}}]}
    assert rows_of(assessment, "number", "probability") == [(0.37,), (10.0,), (20.0,)]


@pytest.mark.parametrize("value, code, canonical", [
    (250, "mg", (0.25, "g")),
    (1.5, "kg", (1500.0, "g")),
    (120, "mm[Hg]", (15998.64, "Pa")),
    (37, "Cel", (310.15, "K")),
    (98.6, "[degF]", (310.15, "K")),
    (72, "[in_i]", (1.8288, "m")),
    (180, "mg/dL", (1.8, "g/L")),
    (5.4, "mmol/L", (5.4, "mmol/L")),
    (60, "/min", (1.0, "/s")),
    (24.2, "kg/m2", (24.2, "kg/m2")),
    (97, "%", (97.0, "%")),
])
def test_ucum_canonical_form(value, code, canonical):
    converted = canonical_quantity(value, UCUM, code)
    assert converted[1] == canonical[1]
    assert converted[0] == pytest.approx(canonical[0], rel=1e-9)


def test_quantity_rows_with_and_without_ucum():
    observation = {"resourceType": "Observation", "valueQuantity": {
        "value": 250, "unit": "milligram", "system": UCUM, "code": "mg"}}
    assert rows_of(observation, "quantity", "value-quantity") == [(250.0, UCUM, "mg", 0.25, "g")]
    local = {"resourceType": "Observation", "valueQuantity": {"value": 3, "unit": "tablets"}}
    assert rows_of(local, "quantity", "value-quantity") == [(3.0, None, "tablets", None, None)]
    charge = {"resourceType": "ChargeItem", "priceOverride": {"value": 120.5, "currency": "CNY"}}
    assert rows_of(charge, "quantity", "price-override") == [(120.5, "urn:iso:std:iso:4217", "CNY", None, None)]


def test_uri_rows():
    questionnaire = {"resourceType": "Questionnaire", "status": "active",
                     "url": "http://example.org/Questionnaire/phq-9"}
    assert rows_of(questionnaire, "uri", "url") == [("http://example.org/Questionnaire/phq-9",)]


# -- composites --------------------------------------------------------------------------------

BLOOD_PRESSURE = {
    "resourceType": "Observation", "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
    "component": [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": {"value": 120, "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": {"value": 80, "system": UCUM, "code": "mm[Hg]"}}]}


def test_code_value_quantity_pairs_code_and_value_with_canonical_row():
    weight = {"resourceType": "Observation", "status": "final",
              "code": {"coding": [{"system": LOINC, "code": "29463-7"}], "text": "Body weight"},
              "valueQuantity": {"value": 72.5, "system": UCUM, "code": "kg"}}
    assert rows_of(weight, "composite", "code-value-quantity") == [
        (LOINC, "29463-7", UCUM, "kg", 72.5, 72.5, None),
        (LOINC, "29463-7", UCUM, "g", 72500.0, 72500.0, CANONICAL_ROW)]


def test_component_code_value_quantity_pairs_within_each_component():
    rows = rows_of(BLOOD_PRESSURE, "composite", "component-code-value-quantity")
    assert (LOINC, "8480-6", UCUM, "mm[Hg]", 120.0, 120.0, None) in rows
    assert (LOINC, "8462-4", UCUM, "mm[Hg]", 80.0, 80.0, None) in rows
    assert (LOINC, "8480-6", UCUM, "mm[Hg]", 80.0, 80.0, None) not in rows
    assert rows_of(BLOOD_PRESSURE, "composite", "code-value-quantity") == []
    combo = rows_of(BLOOD_PRESSURE, "composite", "combo-code-value-quantity")
    assert (LOINC, "8462-4", UCUM, "mm[Hg]", 80.0, 80.0, None) in combo
    assert rows_of(BLOOD_PRESSURE, "quantity", "component-value-quantity") == [
        (120.0, UCUM, "mm[Hg]", 15998.64, "Pa"), (80.0, UCUM, "mm[Hg]", 10665.76, "Pa")]


def test_code_value_date_string_and_concept_composites():
    base = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": LOINC, "code": "X"}]}}
    dated = {**base, "valueDateTime": "2024-02-29"}
    assert rows_of(dated, "composite", "code-value-date") == [
        (LOINC, "X", None, None, us(datetime(2024, 2, 29, tzinfo=UTC)), us(datetime(2024, 3, 1, tzinfo=UTC)), None)]
    text = {**base, "valueString": "Négatif"}
    assert rows_of(text, "composite", "code-value-string") == [(LOINC, "X", None, None, None, None, "negatif")]
    concept = {**base, "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260385009"}]}}
    assert rows_of(concept, "composite", "code-value-concept") == [
        (LOINC, "X", "http://snomed.info/sct", "260385009", None, None, None)]


def test_use_context_composite():
    plan = {"resourceType": "PlanDefinition", "status": "active", "useContext": [{
        "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
        "valueRange": {"low": {"value": 18, "system": UCUM, "code": "a"},
                       "high": {"value": 65, "system": UCUM, "code": "a"}}}]}
    rows = rows_of(plan, "composite", "context-type-quantity")
    ctx = "http://terminology.hl7.org/CodeSystem/usage-context-type"
    assert (ctx, "age", UCUM, "a", 18.0, 18.0, None) in rows and (ctx, "age", UCUM, "a", 65.0, 65.0, None) in rows


# -- user-defined parameters and the fast path -------------------------------------------------

def test_user_defined_extension_parameter_is_indexed():
    reg = Registry(search_parameters())
    reg.add({"resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/patient-birth-place",
             "code": "birth-place", "base": ["Patient"], "type": "string",
             "expression": "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace').value"})
    patient = {"resourceType": "Patient", "extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
        "valueAddress": {"city": "Hangzhou", "country": "CN"}}]}
    assert [row for row in extract(patient, reg).string if row[0] == "birth-place"] == [
        ("birth-place", "hangzhou", "Hangzhou"), ("birth-place", "cn", "CN")]


def test_nearly_every_official_parameter_takes_the_fast_path():
    reg = registry()
    compiled = [e for t in reg.resource_types() for e in extractors(t, reg)]
    slow = sorted((e.param.resource_type, e.param.code) for e in compiled if not e.fast)
    indexed = {(p.resource_type, p.code) for t in reg.resource_types() for p in reg.params_for(t).values() if p.indexed}
    # only the three-component MolecularSequence coordinates do not fit the composite table
    assert indexed - {(e.param.resource_type, e.param.code) for e in compiled} == {
        ("MolecularSequence", "chromosome-variant-coordinate"), ("MolecularSequence", "chromosome-window-coordinate"),
        ("MolecularSequence", "referenceseqid-variant-coordinate"),
        ("MolecularSequence", "referenceseqid-window-coordinate")}
    assert slow == [("Patient", "deceased")]


def test_duplicate_rows_are_removed():
    patient = {"resourceType": "Patient", "name": [{"family": "Li"}, {"family": "Li"}]}
    assert rows_of(patient, "string", "family") == [("li", "Li")]


# -- the fast path agrees with fhirpathpy on the specification's examples ---------------------

DEFINITIONAL_CATEGORIES = {"Foundation.Conformance", "Foundation.Terminology"}
CATEGORY_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-category"


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    """The R4 examples of non-definitional types, with the resources inside their Bundles."""
    found, categories = [], {}
    with tarfile.open(shared_file("hl7.fhir.r4.examples-4.0.1.tgz")) as tar:
        for member in tar:
            if not (member.isfile() and member.name.startswith("package/") and member.name.count("/") == 1
                    and member.name.endswith(".json")):
                continue
            try:
                resource = json.load(tar.extractfile(member))
            except ValueError:
                continue
            if resource.get("resourceType") == "StructureDefinition" and resource.get("kind") == "resource" \
                    and resource.get("derivation") == "specialization":
                categories[resource["type"]] = next((e["valueString"] for e in resource.get("extension", ())
                                                     if e["url"] == CATEGORY_EXT), None)
            found.append(resource)
    found += [e["resource"] for r in found if r.get("resourceType") == "Bundle"
              for e in r.get("entry", ()) if "resource" in e]
    return [r for r in found if r.get("resourceType") in categories
            and categories[r["resourceType"]] not in DEFINITIONAL_CATEGORIES]


def _comparable(values: list) -> Counter:
    def plain(value):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value
    return Counter(json.dumps(plain(v), sort_keys=True, default=str) for v in values)


def test_fast_path_agrees_with_fhirpathpy_on_every_example(examples):
    reg, compiled, compared, disagreements = registry(), {}, 0, []
    for resource in examples:
        resource_type = resource["resourceType"]
        for param in reg.params_for(resource_type).values():
            if not param.indexed:
                continue
            key = (resource_type, param.code)
            if key not in compiled:
                compiled[key] = (compile_fast(param.expression, resource_type),
                                 compile_fhirpath(param.expression, resource_type))
            fast, reference = compiled[key]
            if fast is None:
                continue
            pairs = [(param.expression, [v for b in fast for v in b.get(resource, resource)],
                      [v for v, _ in reference(resource, resource)])]
            if param.type == "composite":
                pairs += _component_pairs(param, fast, resource)
            for expression, got, expected in pairs:
                compared += 1
                # fhirpathpy's union removes duplicates; the index removes them too
                if set(_comparable(got)) != set(_comparable(expected)):
                    disagreements.append((resource_type, resource.get("id"), expression, got, expected))
    assert len(examples) > 700 and compared > 15000
    assert disagreements == []


def _component_pairs(param, base_branches, resource) -> list[tuple[str, list, list]]:
    """(expression, fast values, fhirpathpy values) of each composite component on each focus."""
    pairs = []
    for branch in base_branches:
        for focus in branch.get(resource, resource):
            for _, expression in param.components:
                fast = compile_fast(expression, branch.type)
                if fast is None:
                    continue
                reference = compile_fhirpath(expression, branch.type)
                pairs.append((expression, [v for b in fast for v in b.get(focus, resource)],
                              [v for v, _ in reference(focus, resource)]))
    return pairs


def test_rows_are_the_same_when_every_parameter_goes_through_fhirpathpy(examples, monkeypatch):
    official = search_parameters()
    fast_registry = Registry(official)
    fast_rows = [extract(resource, fast_registry) for resource in examples]
    monkeypatch.setattr(indexing, "compile_fast", lambda expression, context: None)
    slow_registry = Registry(official)
    assert not any(e.fast for e in extractors("Observation", slow_registry))
    slow_rows = [extract(resource, slow_registry) for resource in examples]
    differing = [(resource["resourceType"], resource.get("id"), table)
                 for resource, fast, slow in zip(examples, fast_rows, slow_rows)
                 for table in fast.TABLES if set(getattr(fast, table)) != set(getattr(slow, table))]
    assert sum(len(getattr(rows, t)) for rows in fast_rows for t in rows.TABLES) > 10000
    assert differing == []


def test_user_defined_composite_is_indexed():
    reg = Registry(search_parameters())
    reg.add({"resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/code-interpretation",
             "code": "code-interpretation", "base": ["Observation"], "type": "composite", "expression": "Observation",
             "component": [
                 {"definition": "http://hl7.org/fhir/SearchParameter/clinical-code", "expression": "code"},
                 {"definition": "http://hl7.org/fhir/SearchParameter/Observation-value-concept",
                  "expression": "interpretation"}]})
    v3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    observation = {"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": LOINC, "code": "2339-0"}]},
                   "interpretation": [{"coding": [{"system": v3, "code": "H"}]}]}
    assert [row for row in extract(observation, reg).composite if row[0] == "code-interpretation"] == [
        ("code-interpretation", LOINC, "2339-0", v3, "H", None, None, None)]


def test_audit_event_rows_worked_out_once_per_distinct_element_equal_a_fresh_extraction(monkeypatch):
    """AuditEvents share agents, type and outcome: rows remembered per element value are the same rows."""
    from ihs.audit.events import audit_event

    events = [audit_event(action, user=f"Practitioner/p{i % 3}", user_name=f"u{i % 3}", client_id="his",
                          roles=("practitioner",), organizations=("Organization/o1",), address="10.0.0.7",
                          server="http://ihs", resource=f"Observation/o{i}", patients=(f"pat{i % 5}",),
                          purpose=("BTG",) if i % 4 == 0 else ())
              for i, action in enumerate(["read", "search", "read", "create", "read", "delete"] * 3)]
    remembered = [extract(e) for e in events]
    monkeypatch.setattr(indexing, "_MEMO_KEYS", {})
    fresh = [extract(e) for e in events]
    for a, b in zip(remembered, fresh):
        for table in a.TABLES:
            assert sorted(getattr(a, table)) == sorted(getattr(b, table)), table
    assert any(r[0] == "patient" for r in fresh[0].reference)  # the agent and entity branches both indexed
