"""Dashboard indicators computed over a small region whose answers are known."""
from __future__ import annotations

import pytest

from ihs.analytics.indicators import FACILITY_LEVEL, REFERRAL, VIEWS, compute
from ihs.analytics.warehouse import Warehouse
from ihs.fhir.errors import FhirError, NotFound
from ihs.fhir.validation import validate

SNOMED = "http://snomed.info/sct"


def _org(id_, tier=None, part_of=None):
    org = {"resourceType": "Organization", "id": id_, "name": id_}
    if tier:
        org["type"] = [{"coding": [{"system": FACILITY_LEVEL, "code": tier}]}]
    if part_of:
        org["partOf"] = {"reference": f"Organization/{part_of}"}
    return org


def _location(id_, org, kind):
    return {"resourceType": "Location", "id": id_, "status": "active",
            "managingOrganization": {"reference": f"Organization/{org}"},
            "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                                         "code": kind}]}}


def _encounter(id_, org, kind, status, start):
    return {"resourceType": "Encounter", "id": id_, "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": kind},
            "subject": {"reference": "Patient/p1"}, "serviceProvider": {"reference": f"Organization/{org}"},
            "period": {"start": start}}


def _appointment(id_, status, start, created):
    return {"resourceType": "Appointment", "id": id_, "status": status, "start": start,
            "end": start.replace("09:00", "09:15"), "created": created,
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                            {"actor": {"reference": "Location/clinic"}, "status": "accepted"}]}


def _referral(id_, source, target):
    return {"resourceType": "ServiceRequest", "id": id_, "status": "active", "intent": "order",
            "category": [{"coding": [{"system": SNOMED, "code": REFERRAL}]}], "subject": {"reference": "Patient/p2"},
            "authoredOn": "2024-03-05", "requester": {"reference": f"Organization/{source}"},
            "performer": [{"reference": f"Organization/{target}"}]}


def _condition(id_, patient, code, onset):
    return {"resourceType": "Condition", "id": id_, "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
            "onsetDateTime": onset}


def _prescription(id_, encounter, code):
    return {"resourceType": "MedicationRequest", "id": id_, "status": "completed", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": code}]},
            "subject": {"reference": "Patient/p1"}, "encounter": {"reference": f"Encounter/{encounter}"},
            "authoredOn": "2024-03-02"}


REGION = [
    _org("tertiary", "tertiary"), _org("cardiology", part_of="tertiary"), _org("centre", "primary"),
    _location("bed-1", "tertiary", "bd"), _location("bed-2", "tertiary", "bd"), _location("clinic", "centre", "bu"),
    {"resourceType": "Patient", "id": "p1", "address": [{"district": "吴兴区"}]},
    {"resourceType": "Patient", "id": "p2", "address": [{"district": "安吉县"}]},
    _encounter("ward", "cardiology", "IMP", "in-progress", "2024-03-01T08:00:00+08:00"),
    _encounter("visit-march", "centre", "AMB", "finished", "2024-03-02T09:00:00+08:00"),
    _encounter("visit-april", "centre", "AMB", "finished", "2024-04-02T09:00:00+08:00"),
    _appointment("kept", "fulfilled", "2024-03-11T09:00:00+08:00", "2024-03-01T09:00:00+08:00"),
    _appointment("missed", "noshow", "2024-03-12T09:00:00+08:00", "2024-03-10T09:00:00+08:00"),
    _appointment("later", "booked", "2024-04-12T09:00:00+08:00", "2024-03-12T09:00:00+08:00"),
    _referral("up", "centre", "tertiary"), _referral("down", "tertiary", "centre"),
    _condition("c1", "p1", "J06.9", "2024-03-02"), _condition("c2", "p2", "J06.9", "2024-03-03"),
    _condition("c3", "p2", "I10", "2024-04-01"),
    _prescription("m1", "visit-march", "5640"), _prescription("m2", "visit-march", "161"),
    {"resourceType": "DetectedIssue", "id": "alert", "status": "final", "severity": "high",
     "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "DRG"}]},
     "patient": {"reference": "Patient/p1"}, "identifiedDateTime": "2024-03-02T09:10:00+08:00"},
]


@pytest.fixture
def warehouse(store):
    with store.session(write=True) as uow:
        for resource in REGION:
            validate(resource)
            uow.create(dict(resource))
    warehouse = Warehouse(store, VIEWS)
    warehouse.refresh()
    return warehouse


def test_bed_occupancy_counts_department_inpatients_for_their_hospital(warehouse):
    assert compute(warehouse, "bed-occupancy") == [
        {"facility": "tertiary", "facility_name": "tertiary", "tier": "tertiary", "beds": 2, "occupied": 1,
         "occupancy": 0.5}]


def test_appointments_give_no_show_rate_and_wait(warehouse):
    march = compute(warehouse, "appointments", start="2024-03", end="2024-03")
    assert len(march) == 1
    row = march[0]
    assert (row["facility"], row["fulfilled"], row["noshow"], row["noshow_rate"]) == ("centre", 1, 1, 0.5)
    assert row["mean_wait_days"] == 6.0  # (10 + 2) / 2


def test_referrals_go_up_and_down_between_tiers(warehouse):
    flows = {(r["from_facility"], r["to_facility"]): r["direction"] for r in compute(warehouse, "referrals")}
    assert flows == {("centre", "tertiary"): "up", ("tertiary", "centre"): "down"}


def test_diseases_by_category_and_district(warehouse):
    rows = compute(warehouse, "diseases", start="2024-03", end="2024-03")
    assert sorted((r["district"], r["icd10_category"], r["diagnoses"]) for r in rows) == [
        ("吴兴区", "J06", 1), ("安吉县", "J06", 1)]


def test_visits_prescriptions_and_alerts(warehouse):
    april = compute(warehouse, "visits", start="2024-04")
    assert [(r["facility"], r["class"], r["encounters"]) for r in april] == [("centre", "AMB", 1)]
    prescriptions = compute(warehouse, "prescriptions")
    assert [(r["facility"], r["prescriptions"], r["per_visit"], r["drugs"]) for r in prescriptions] == [
        ("centre", 2, 2.0, 2)]
    assert [(r["severity"], r["code"], r["alerts"]) for r in compute(warehouse, "cds-alerts")] == [("high", "DRG", 1)]


def test_unknown_indicator_and_bad_month(warehouse):
    with pytest.raises(NotFound):
        compute(warehouse, "happiness")
    with pytest.raises(FhirError):
        compute(warehouse, "visits", start="March")
