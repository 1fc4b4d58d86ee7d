"""Records for the surveillance tests: patients, encounters, conditions, outbox events."""
from __future__ import annotations

from dataclasses import dataclass

from ihs.fhir.validation import validate


@dataclass
class Event:
    """An outbox event as the dispatcher delivers it."""

    res_type: str
    res_id: str
    version: int = 1
    interaction: str = "create"


def save(store, resource: dict):
    """Validate and store one resource; returns the stored version."""
    validate(resource)
    with store.session(write=True) as uow:
        current = uow.current(resource["resourceType"], resource["id"]) if resource.get("id") else None
        return uow.update(resource, current) if current else uow.create(resource)


def patient(pid: str, *, gender: str = "female", birth: str = "1990-05-01", district: str = "吴兴区") -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth,
            "address": [{"use": "home", "city": "湖州市", "district": district}]}


def encounter(eid: str, pid: str, day: str, *, complaint: str | None = None, diagnoses=(),
              provider: str = "Organization/hz-nth") -> dict:
    resource = {"resourceType": "Encounter", "id": eid, "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{pid}"}, "period": {"start": f"{day}T09:00:00+08:00"},
                "serviceProvider": {"reference": provider}}
    if complaint:
        resource["reasonCode"] = [{"text": complaint}]
    if diagnoses:
        resource["diagnosis"] = [{"condition": {"reference": f"Condition/{c}"}} for c in diagnoses]
    return resource


def condition(cid: str, pid: str, code: str, *, encounter_id: str | None = None, status: str = "confirmed") -> dict:
    resource = {"resourceType": "Condition", "id": cid,
                "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                   "code": status}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
                "subject": {"reference": f"Patient/{pid}"}, "recordedDate": "2024-01-10T10:00:00+08:00"}
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return resource
