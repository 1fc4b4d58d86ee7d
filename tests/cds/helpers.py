"""Builders of the FHIR resources and CDS Hooks requests the prescription-safety tests use.

Drugs are named by INN and coded as the knowledge base codes them (RxNorm, else ATC).
"""
from __future__ import annotations

import uuid
from datetime import datetime

from ihs.cds.kb import ATC, RXNORM
from ihs.cds.medication import LOCAL
from ihs.cds.open_kb import OpenKnowledgeBase

KB = OpenKnowledgeBase()
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=LOCAL)
LICENCE = "https://ihs.example.org/fhir/sid/practitioner"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"


def concept(inn: str) -> dict:
    drug = KB.drug(inn)
    coding = {"system": RXNORM, "code": drug.rxcui} if drug.rxcui else {"system": ATC, "code": drug.atc[0]}
    return {"coding": [dict(coding, display=inn)], "text": drug.zh}


def order(id_: str | None, inn: str, *, status: str = "draft", dose: float = 1, unit: str = "mg", per_day: int = 1,
          days: float = 7, patient: str = "p1", requester: str = "Practitioner/dr1", long_term: bool = False,
          authored: str | None = "2026-05-01T09:00:00+08:00", **extra) -> dict:
    request = {
        "resourceType": "MedicationRequest", "status": status, "intent": "order",
        "subject": {"reference": f"Patient/{patient}"}, "requester": {"reference": requester},
        "medicationCodeableConcept": concept(inn),
        "dosageInstruction": [{"route": {"text": "口服"},
                               "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit, "system": UCUM, "code": unit}}],
                               "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}}],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "days", "system": UCUM, "code": "d"}},
    }
    if id_:
        request["id"] = id_
    if authored:
        request["authoredOn"] = authored
    if long_term:
        request["courseOfTherapyType"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "code": "continuous"}]}
    request.update(extra)
    return request


def patient(id_: str = "p1", birth: str = "1960-03-01") -> dict:
    return {"resourceType": "Patient", "id": id_, "birthDate": birth}


def practitioner(id_: str = "dr1", *, licence: str | None = "110101196001011234", active: bool = True, **extra) -> dict:
    resource = {"resourceType": "Practitioner", "id": id_, "active": active}
    if licence:
        resource["identifier"] = [{"system": LICENCE, "value": licence}]
    resource.update(extra)
    return resource


def condition(code: str, id_: str | None = None, patient_id: str = "p1", status: str = "active") -> dict:
    resource = {"resourceType": "Condition", "subject": {"reference": f"Patient/{patient_id}"},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                               "code": status}]},
                "code": {"coding": [{"system": ICD10, "code": code}]}}
    if id_:
        resource["id"] = id_
    return resource


def allergy(code: dict, id_: str = "a1", patient_id: str = "p1", verification: str = "confirmed") -> dict:
    return {"resourceType": "AllergyIntolerance", "id": id_, "patient": {"reference": f"Patient/{patient_id}"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                           "code": "active"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": verification}]},
            "category": ["medication"], "code": code}


def egfr(value: float, id_: str = "e1", patient_id: str = "p1", when: str = "2026-04-20") -> dict:
    return {"resourceType": "Observation", "id": id_, "status": "final", "subject": {"reference": f"Patient/{patient_id}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "62238-1"}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}", "system": UCUM, "code": "mL/min/{1.73_m2}"}}


def bundle(resources: list[dict], kind: str = "searchset") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def prefetch(*, active=(), allergies=(), conditions=(), egfr_value: float | None = None, birth: str = "1960-03-01",
             user: dict | None = None) -> dict:
    return {"patient": patient(birth=birth), "medications": bundle(list(active)), "allergies": bundle(list(allergies)),
            "conditions": bundle(list(conditions)),
            "egfr": bundle([egfr(egfr_value)] if egfr_value is not None else []),
            "user": user if user is not None else practitioner()}


def hook_request(hook: str, orders: list[dict], data: dict | None = None, **context) -> dict:
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/dr1", "patientId": "p1", **context}}
    if hook in ("order-sign", "order-select"):
        body["context"]["draftOrders"] = bundle(orders, "collection")
    if hook == "order-select":
        body["context"].setdefault("selections", [f"MedicationRequest/{o['id']}" for o in orders])
    if hook == "medication-verify":
        body["context"]["medication"] = orders[0]
    if data is not None:
        body["prefetch"] = data
    return body
