"""The demo region: deterministic, shaped as the platform expects, valid R4, references that resolve.

The names, resident ID numbers, addresses and phone numbers are made by IHS's own generator
(ihs/demo) from built-in tables, not taken from any data set; these tests hold them to the
rules real ones follow (GB 11643 ID numbers, mainland mobile numbers, Chinese addresses).
"""
from __future__ import annotations

import re
import time
from collections import Counter
from datetime import date

import pytest

from ihs.demo import generate_region
from ihs.demo.codes import ICD10, LOINC, ORGANIZATION_TYPE, RESIDENT_ID, RXNORM, UCUM
from ihs.demo.identity import check_character, decode_resident_id, resident_id
from ihs.fhir.validation import issues

ANCHOR = date(2026, 11, 1)
SHARED_TYPES = {"Organization", "Location", "Practitioner", "PractitionerRole"}
CONDITIONAL = re.compile(r"(?P<type>[A-Za-z]+)\?identifier=(?P<system>[^|]+)\|(?P<value>.+)")
VITAL_UNITS = {"8867-4": "/min", "8310-5": "Cel", "29463-7": "kg", "8302-2": "cm", "39156-5": "kg/m2", "59408-5": "%"}


@pytest.fixture(scope="module")
def timed_region():
    started = time.perf_counter()
    bundles = generate_region()
    return bundles, time.perf_counter() - started


@pytest.fixture(scope="module")
def region(timed_region):
    return timed_region[0]


def resources(bundles, resource_type=None):
    for bundle in bundles:
        for entry in bundle["entry"]:
            if resource_type is None or entry["resource"]["resourceType"] == resource_type:
                yield entry["resource"]


def references(node):
    """Every Reference.reference string anywhere inside a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def shared_identifiers(bundle):
    """(type, system, value) of every identifier of the region's shared resources."""
    return {(r["resourceType"], i["system"], i["value"]) for r in resources([bundle]) for i in r.get("identifier", [])}


def test_same_seed_gives_the_same_region(region):
    assert generate_region() == region


def test_another_seed_gives_another_region():
    assert generate_region(seed=7, residents=3) != generate_region(seed=42, residents=3)


def test_first_residents_do_not_depend_on_how_many_are_asked_for(region):
    assert generate_region(residents=12) == region[:13]


def test_three_hundred_residents_take_under_three_seconds(timed_region):
    assert timed_region[1] < 3.0


def test_history_is_dated_from_the_anchor_not_the_clock():
    anchor = date(2021, 3, 1)
    bundles = generate_region(residents=40, anchor=anchor)
    ends = [e["period"]["end"][:10] for e in resources(bundles, "Encounter")]
    assert ends and max(ends) < anchor.isoformat() and min(ends) > "2017-12-31"


def test_bundles_are_transactions_region_first_then_one_per_resident(region):
    assert len(region) == 301
    assert all(b["resourceType"] == "Bundle" and b["type"] == "transaction" for b in region)
    assert {r["resourceType"] for r in resources(region[:1])} == SHARED_TYPES
    for bundle in region[1:]:
        types = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert types[0] == "Patient" and types.count("Patient") == 1
        assert not SHARED_TYPES & set(types)


def test_every_resource_is_valid_r4(region):
    problems = [(i.expression, i.diagnostics) for bundle in region for i in issues(bundle)]
    assert problems == []


def test_urn_references_resolve_inside_their_bundle(region):
    full_urls = [e["fullUrl"] for b in region for e in b["entry"]]
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    assert len(set(full_urls)) == len(full_urls)
    for bundle in region:
        here = {e["fullUrl"] for e in bundle["entry"]}
        urns = {r for r in references(bundle) if r.startswith("urn:uuid:")}
        assert urns <= here


def test_other_references_are_conditional_on_resources_of_the_region_bundle(region):
    shared = shared_identifiers(region[0])
    seen = Counter()
    for bundle in region[1:]:
        for reference in references(bundle):
            if reference.startswith("urn:uuid:"):
                continue
            match = CONDITIONAL.fullmatch(reference)
            assert match, reference
            assert (match["type"], match["system"], match["value"]) in shared, reference
            seen[match["type"]] += 1
    assert set(seen) == {"Organization", "Location", "Practitioner"}


def test_region_bundle_creates_each_shared_resource_only_if_absent(region):
    for entry in region[0]["entry"]:
        identifier = entry["resource"]["identifier"][0]
        assert entry["request"] == {"method": "POST", "url": entry["resource"]["resourceType"],
                                    "ifNoneExist": f"identifier={identifier['system']}|{identifier['value']}"}
    assert len(shared_identifiers(region[0])) == len(region[0]["entry"])


def test_region_has_every_kind_of_institution(region):
    organizations = list(resources(region[:1], "Organization"))
    kinds = Counter(c["code"] for o in organizations for t in o["type"] for c in t["coding"]
                    if c["system"] == ORGANIZATION_TYPE)
    levels = Counter(t["coding"][0]["code"] for o in organizations for t in o["type"]
                     if t["coding"][0]["system"] != ORGANIZATION_TYPE)
    assert kinds["govt"] == 3 and kinds["pay"] == 1
    assert levels == {"primary": 6, "secondary": 4, "tertiary": 2}
    urn_of = {e["fullUrl"]: e["resource"] for e in region[0]["entry"]}
    departments = [o for o in organizations if o["type"][0]["coding"][0]["code"] == "dept"]
    assert len(departments) == 2 * 6 + 4 * 4
    assert all(urn_of[d["partOf"]["reference"]]["type"][0]["coding"][0]["code"] == "prov" for d in departments)


def test_staff_are_doctors_nurses_and_pharmacists_with_family_doctors_in_community_centres(region):
    roles = list(resources(region[:1], "PractitionerRole"))
    assert len(roles) == len(list(resources(region[:1], "Practitioner")))
    assert Counter(r["code"][0]["coding"][0]["code"] for r in roles).keys() == {"doctor", "nurse", "pharmacist"}
    family_doctors = [r for r in roles if r.get("specialty", [{}])[0].get("coding", [{}])[0].get("code") == "419772000"]
    assert len(family_doctors) == 6 * 3
    assert all(r["code"][0]["text"] == "家庭医生" for r in family_doctors)


def test_resident_id_check_character_matches_the_standards_examples():
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == "4"
    assert resident_id("110105", date(1949, 12, 31), 2) == "11010519491231002X"


def test_decoding_a_resident_id_rejects_a_wrong_check_character():
    assert decode_resident_id("440524188001010014").gender == "male"
    with pytest.raises(ValueError):
        decode_resident_id("440524188001010015")


def test_every_resident_id_is_unique_valid_and_agrees_with_birth_date_and_sex(region):
    numbers = []
    for patient in resources(region, "Patient"):
        [number] = [i["value"] for i in patient["identifier"] if i["system"] == RESIDENT_ID]
        decoded = decode_resident_id(number)
        assert decoded.birth_date.isoformat() == patient["birthDate"]
        assert decoded.gender == patient["gender"]
        assert decoded.area_code[:2] in {"33", "34", "36", "41", "32", "51"}
        numbers.append(number)
    assert len(numbers) == 300 and len(set(numbers)) == 300


def test_residents_have_hanzi_and_pinyin_names_mobile_phones_and_chinese_addresses(region):
    patients = list(resources(region, "Patient"))
    for patient in patients:
        hanzi, pinyin = patient["name"]
        assert hanzi["text"] == hanzi["family"] + hanzi["given"][0]
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", hanzi["text"])
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z']+", pinyin["text"])
        assert re.fullmatch(r"1[3-9]\d{9}", patient["telecom"][0]["value"])
        home = patient["address"][0]
        assert home["state"] == "浙江省" and home["city"] == "湖州市" and home["country"] == "CN"
        assert home["text"].startswith("浙江省湖州市" + home["district"] + home["line"][0])
    assert Counter(p["gender"] for p in patients).keys() == {"male", "female"}
    ages = [ANCHOR.year - int(p["birthDate"][:4]) for p in patients]
    assert min(ages) < 5 and max(ages) > 80


def test_medical_record_numbers_are_unique_within_each_institution(region):
    numbers = [(i["system"], i["value"]) for p in resources(region, "Patient") for i in p["identifier"]
               if i["system"] != RESIDENT_ID]
    assert len(numbers) > 300
    assert len(set(numbers)) == len(numbers)


def test_history_has_encounters_of_each_class_in_the_past_and_after_birth(region):
    classes = Counter()
    for bundle in region[1:]:
        born = bundle["entry"][0]["resource"]["birthDate"]
        for encounter in resources([bundle], "Encounter"):
            classes[encounter["class"]["code"]] += 1
            assert born <= encounter["period"]["start"][:10]
            assert encounter["period"]["start"] < encounter["period"]["end"] <= "2026-11-01"
            assert encounter["serviceProvider"] and encounter["participant"]
    assert classes["AMB"] > 500 and classes["EMER"] > 30 and classes["IMP"] > 0


def test_conditions_use_icd10_with_english_and_chinese_names(region):
    codes = Counter()
    for condition in resources(region, "Condition"):
        coding = condition["code"]["coding"][0]
        assert coding["system"] == ICD10
        assert re.search(r"[\u4e00-\u9fff]", condition["code"]["text"]) and coding["display"].isascii()
        codes[coding["code"]] += 1
    assert {"I10", "E11.9", "J44.9", "I25.1", "J11.1", "J06.9", "A09.9", "I63.9"} <= codes.keys()


def test_vital_signs_use_loinc_and_ucum(region):
    seen = set()
    for observation in resources(region, "Observation"):
        if observation["category"][0]["coding"][0]["code"] != "vital-signs":
            continue
        code = observation["code"]["coding"][-1]["code"]
        assert observation["code"]["coding"][-1]["system"] == LOINC
        seen.add(code)
        if code == "85354-9":
            components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in observation["component"]}
            assert components.keys() == {"8480-6", "8462-4"}
            assert components["8480-6"]["value"] > components["8462-4"]["value"]
            assert {q["code"] for q in components.values()} == {"mm[Hg]"}
        else:
            assert observation["valueQuantity"]["system"] == UCUM
            assert observation["valueQuantity"]["code"] == VITAL_UNITS[code]
    assert seen == VITAL_UNITS.keys() | {"85354-9"}


def test_lab_results_carry_reference_ranges_and_a_matching_interpretation(region):
    labs = [o for o in resources(region, "Observation") if o["category"][0]["coding"][0]["code"] == "laboratory"]
    assert {"14771-0", "4548-4", "14682-9"} <= {o["code"]["coding"][0]["code"] for o in labs}
    for observation in labs:
        value = observation["valueQuantity"]["value"]
        bounds = observation["referenceRange"][0]
        flag = observation["interpretation"][0]["coding"][0]["code"]
        if value > bounds["high"]["value"]:
            assert flag == "H"
        elif "low" in bounds and value < bounds["low"]["value"]:
            assert flag == "L"
        else:
            assert flag == "N"


def test_prescriptions_name_rxnorm_drugs_in_chinese_and_treat_a_condition_of_the_resident(region):
    drugs = set()
    for bundle in region[1:]:
        conditions = {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"}
        for request in resources([bundle], "MedicationRequest"):
            coding = request["medicationCodeableConcept"]["coding"][0]
            assert coding["system"] == RXNORM
            drugs.add(request["medicationCodeableConcept"]["text"])
            assert request["reasonReference"]
            assert {r["reference"] for r in request["reasonReference"]} <= conditions
    assert "苯磺酸氨氯地平片（氨氯地平）" in drugs and "盐酸二甲双胍片（二甲双胍）" in drugs


def test_each_long_term_drug_has_one_active_prescription_per_resident(region):
    for bundle in region[1:]:
        active = Counter(r["medicationCodeableConcept"]["coding"][0]["code"]
                         for r in resources([bundle], "MedicationRequest")
                         if r["status"] == "active" and r["courseOfTherapyType"]["coding"][0]["code"] == "continuous")
        assert all(count == 1 for count in active.values())


def test_appointments_booked_ahead_and_fulfilled_in_the_past(region):
    appointments = list(resources(region, "Appointment"))
    booked = [a for a in appointments if a["status"] == "booked"]
    fulfilled = [a for a in appointments if a["status"] == "fulfilled"]
    assert booked and fulfilled
    assert all(a["start"] > "2026-11-01" for a in booked)
    assert all(a["created"] < a["start"] < "2026-11-01" for a in fulfilled)
    linked = {r["reference"] for e in resources(region, "Encounter") for r in e.get("appointment", [])}
    assert len(linked) == len(fulfilled)
