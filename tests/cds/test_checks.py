"""Each prescription check, one positive and one negative case at least (data given as prefetch)."""
from __future__ import annotations

from datetime import timedelta

from ihs.cds import service
from tests.cds.helpers import (KB, NOW, allergy, concept, condition, hook_request, order, practitioner, prefetch)

HYPERTENSION, DIABETES, PHARYNGITIS = condition("I10"), condition("E11.9"), condition("J02.9")


def cards(hook: str, orders: list[dict], check: str | None = None, now=NOW, **data) -> list[dict]:
    svc = service.service({"medication-verify": "pharmacist-verification", "patient-view": "medication-review"}
                          .get(hook, "prescription-safety"), hook)
    result = service.run(None, svc, hook_request(hook, orders, prefetch(**data)), fetcher=None, scope="t", now=now,
                         kb=KB, record=False)
    return [c for c in result.cards if check is None or c["source"]["topic"]["code"] == check]


def indicators(found: list[dict]) -> list[str]:
    return [c["indicator"] for c in found]


# -- drug-drug interactions and duplicates --------------------------------------------------------

def test_ddi_simvastatin_with_clarithromycin_is_critical_and_suggests_a_statin_not_cleared_by_cyp3a4():
    found = cards("order-sign", [order("new", "simvastatin", dose=20)], "ddi",
                  active=[order("cur", "clarithromycin", status="active", dose=500, per_day=2)])
    assert indicators(found) == ["critical"]
    labels = [s["label"] for s in found[0]["suggestions"]]
    assert any("瑞舒伐他汀" in label for label in labels) and any("取消" in label for label in labels)
    replace = next(s for s in found[0]["suggestions"] if "瑞舒伐他汀" in s["label"])
    assert replace["actions"][0]["type"] == "update"
    assert replace["actions"][0]["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "301542"


def test_ddi_clopidogrel_with_omeprazole_is_a_warning():
    found = cards("order-sign", [order("new", "omeprazole", dose=20)], "ddi",
                  active=[order("cur", "clopidogrel", status="active", dose=75)])
    assert indicators(found) == ["warning"]


def test_ddi_checks_other_draft_orders_too():
    found = cards("order-sign", [order("a", "sildenafil", dose=50), order("b", "isosorbide mononitrate", dose=60)], "ddi")
    assert indicators(found) == ["critical"]


def test_duplicate_two_dihydropyridines_warns_but_different_classes_do_not():
    found = cards("order-sign", [order("new", "nifedipine", dose=30)], "duplicate",
                  active=[order("cur", "amlodipine", status="active", dose=5)])
    assert indicators(found) == ["warning"]
    assert cards("order-sign", [order("new", "losartan", dose=50)], "duplicate",
                 active=[order("cur", "amlodipine", status="active", dose=5)]) == []


def test_duplicate_same_ingredient_already_active():
    found = cards("order-sign", [order("new", "metformin", dose=500, per_day=2)], "duplicate",
                  active=[order("cur", "metformin", status="active", dose=500, per_day=2)])
    assert indicators(found) == ["warning"]


# -- allergy ----------------------------------------------------------------------------------------

PENICILLIN = {"text": "青霉素"}


def test_allergy_to_the_class_is_critical():
    found = cards("order-sign", [order("new", "amoxicillin", dose=500, per_day=3)], "allergy",
                  allergies=[allergy(PENICILLIN)], conditions=[PHARYNGITIS])
    assert indicators(found) == ["critical"]


def test_allergy_to_the_same_drug_by_code_is_critical():
    found = cards("order-sign", [order("new", "ibuprofen", dose=300, per_day=2)], "allergy",
                  allergies=[allergy(concept("ibuprofen"))])
    assert indicators(found) == ["critical"]


def test_allergy_cross_reactive_class_is_a_warning():
    found = cards("order-sign", [order("new", "cefuroxime", dose=250, per_day=2)], "allergy",
                  allergies=[allergy(PENICILLIN)], conditions=[PHARYNGITIS])
    assert indicators(found) == ["warning"]
    assert "Drug allergy: a 2022 practice parameter update" in found[0]["source"]["label"]


def test_allergy_unrelated_drug_or_refuted_allergy_raises_nothing():
    assert cards("order-sign", [order("new", "azithromycin", dose=500)], "allergy",
                 allergies=[allergy(PENICILLIN)]) == []
    assert cards("order-sign", [order("new", "amoxicillin", dose=500, per_day=3)], "allergy",
                 allergies=[allergy(PENICILLIN, verification="refuted")]) == []


# -- dose and renal limits ------------------------------------------------------------------------

def test_dose_above_maximum_is_critical_and_suggests_the_maximum():
    found = cards("order-sign", [order("new", "metformin", dose=1000, per_day=3)], "dose", conditions=[DIABETES])
    assert indicators(found) == ["critical"]
    lowered = found[0]["suggestions"][0]["actions"][0]["resource"]
    assert lowered["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 850


def test_dose_within_maximum_or_for_a_child_raises_nothing():
    assert cards("order-sign", [order("new", "metformin", dose=500, per_day=3)], "dose") == []
    assert cards("order-sign", [order("new", "paracetamol", dose=2000, per_day=4)], "dose", birth="2020-01-01") == []


def test_dose_in_grams_converts_to_milligrams():
    found = cards("order-sign", [order("new", "paracetamol", dose=1.5, unit="g", per_day=4)], "dose")
    assert indicators(found) == ["critical"]


def test_renal_contraindication_is_critical_and_renal_limit_a_warning():
    assert indicators(cards("order-sign", [order("new", "metformin", dose=500, per_day=2)], "renal",
                            egfr_value=25)) == ["critical"]
    assert indicators(cards("order-sign", [order("new", "metformin", dose=500, per_day=3)], "renal",
                            egfr_value=40)) == ["warning"]
    assert cards("order-sign", [order("new", "metformin", dose=500, per_day=2)], "renal", egfr_value=40) == []
    assert cards("order-sign", [order("new", "metformin", dose=500, per_day=3)], "renal", egfr_value=80) == []


# -- indication (药不对症) ----------------------------------------------------------------------------

def test_indication_antibiotic_without_infection_is_critical():
    found = cards("order-sign", [order("new", "amoxicillin", dose=500, per_day=3)], "indication",
                  conditions=[HYPERTENSION, condition("J06.9")])
    assert indicators(found) == ["critical"]


def test_indication_other_drug_without_diagnosis_is_a_warning():
    assert indicators(cards("order-sign", [order("new", "amlodipine", dose=5)], "indication",
                            conditions=[DIABETES])) == ["warning"]


def test_indication_met_by_an_active_condition_or_the_orders_reason():
    assert cards("order-sign", [order("new", "amoxicillin", dose=500, per_day=3)], "indication",
                 conditions=[PHARYNGITIS]) == []
    reason = [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}]
    assert cards("order-sign", [order("new", "amlodipine", dose=5, reasonCode=reason)], "indication") == []
    resolved = condition("J02.9", status="resolved")
    assert indicators(cards("order-sign", [order("new", "amoxicillin", dose=500, per_day=3)], "indication",
                            conditions=[resolved])) == ["critical"]


# -- prescription completeness and validity -------------------------------------------------------

def test_completeness_missing_dose_is_critical():
    incomplete = order("new", "amlodipine")
    incomplete["dosageInstruction"][0].pop("doseAndRate")
    found = cards("order-sign", [incomplete], "completeness", conditions=[HYPERTENSION])
    assert indicators(found) == ["critical"] and "用量" in found[0]["summary"]
    assert cards("order-sign", [order("new", "amlodipine", dose=5)], "completeness") == []


def test_completeness_is_not_checked_while_the_drug_is_only_selected():
    incomplete = order("new", "amlodipine")
    incomplete.pop("dosageInstruction")
    assert cards("order-select", [incomplete], "completeness") == []


def test_prescriber_without_licence_or_with_expired_qualification_is_critical():
    assert indicators(cards("order-sign", [order("new", "amlodipine", dose=5)], "prescriber",
                            user=practitioner(licence=None))) == ["critical"]
    expired = practitioner(qualification=[{"code": {"text": "执业医师"}, "period": {"end": "2025-12-31"}}])
    assert indicators(cards("order-sign", [order("new", "amlodipine", dose=5)], "prescriber",
                            user=expired)) == ["critical"]
    assert indicators(cards("order-sign", [order("new", "amlodipine", dose=5)], "prescriber",
                            user=practitioner(active=False))) == ["critical"]
    assert cards("order-sign", [order("new", "amlodipine", dose=5)], "prescriber") == []


def test_supply_beyond_seven_days_needs_a_long_term_course_or_a_reason():
    assert indicators(cards("order-sign", [order("new", "amlodipine", dose=5, days=30)], "supply")) == ["warning"]
    assert cards("order-sign", [order("new", "amlodipine", dose=5, days=28, long_term=True)], "supply") == []
    noted = order("new", "amlodipine", dose=5, days=14, note=[{"text": "出差两周"}])
    assert cards("order-sign", [noted], "supply") == []
    assert indicators(cards("order-sign", [order("new", "amlodipine", dose=5, days=120, long_term=True)],
                            "supply")) == ["critical"]


def test_validity_at_dispensing_same_day_passes_and_next_week_fails():
    signed = order("rx", "amlodipine", status="active", dose=5)
    assert cards("medication-verify", [signed], "validity") == []
    found = cards("medication-verify", [signed], "validity", now=NOW + timedelta(days=7))
    assert indicators(found) == ["critical"] and "过期" in found[0]["summary"]


def test_validity_long_term_prescription_lasts_its_supply():
    signed = order("rx", "amlodipine", status="active", dose=5, days=28, long_term=True)
    assert cards("medication-verify", [signed], "validity", now=NOW + timedelta(days=20)) == []
    assert cards("medication-verify", [signed], "validity", now=NOW + timedelta(days=40))


def test_validity_cancelled_prescription_cannot_be_dispensed():
    found = cards("medication-verify", [order("rx", "amlodipine", status="cancelled", dose=5)], "validity")
    assert indicators(found) == ["critical"]


def test_patient_view_reviews_current_medicines_pairwise_once():
    found = cards("patient-view", [], "ddi", active=[order("a", "simvastatin", status="active", dose=20),
                                                     order("b", "clarithromycin", status="active", dose=500)])
    assert indicators(found) == ["critical"]
