"""Encounters at the region's institutions, and the Appointments that lead to them."""
from __future__ import annotations

from datetime import datetime

from ihs.demo import codes
from ihs.demo.timeline import Visit, fhir_datetime

CLASSES = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}
# kind of visit -> SNOMED CT encounter type and the Chinese name of the service
TYPES = {
    "follow-up": ("390906007", "Follow-up encounter (procedure)", "慢病随访"),
    "check-up": ("162673000", "General examination of patient (procedure)", "健康体检"),
    "symptom": ("185345009", "Encounter for symptom (procedure)", "普通门诊"),
    "specialist": ("185347001", "Encounter for problem (procedure)", "专科门诊"),
    "emergency": ("50849002", "Emergency room admission (procedure)", "急诊"),
    "admission": ("32485007", "Hospital admission (procedure)", "住院"),
}
APPOINTMENT_TYPES = {"follow-up": ("FOLLOWUP", "A follow up visit from a previous appointment"),
                     "check-up": ("CHECKUP", "A routine check-up, such as an annual physical"),
                     "specialist": ("ROUTINE", "Routine appointment - default if not valued")}


def encounter(visit: Visit, klass: str, kind: str, patient: dict, diagnoses: list[dict], *,
              appointment: str | None = None, admit_source: tuple[str, str] | None = None,
              discharge: tuple[str, str] | None = None) -> dict:
    """A finished Encounter of class AMB, EMER or IMP; `diagnoses` are Condition references, principal first."""
    code, display, chinese = TYPES[kind]
    performer = ("ATND", "attender") if klass == "IMP" else ("PPRF", "primary performer")
    period = {"start": fhir_datetime(visit.start), "end": fhir_datetime(visit.end)}
    resource = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": codes.coding(codes.ACT_CODE, klass, CLASSES[klass]),
        "type": [codes.concept(codes.SNOMED, code, display, chinese)],
        "subject": patient,
        "participant": [{"type": [codes.concept(codes.PARTICIPATION_TYPE, *performer)],
                         "individual": visit.practitioner.as_reference()}],
        "period": period,
        "location": [{"location": visit.site.location_reference(), "status": "completed", "period": period}],
        "serviceProvider": visit.site.provider(visit.department),
    }
    if appointment:
        resource["appointment"] = [{"reference": appointment}]
    if diagnoses:
        resource["diagnosis"] = [_diagnosis(reference, rank, klass) for rank, reference in enumerate(diagnoses, 1)]
    if klass == "IMP":
        resource["hospitalization"] = {
            "admitSource": codes.concept(codes.ADMIT_SOURCE, *(admit_source or ("outp", "From outpatient department"))),
            "dischargeDisposition": codes.concept(codes.DISCHARGE_DISPOSITION, *(discharge or ("home", "Home"))),
        }
    return resource


def _diagnosis(condition: dict, rank: int, klass: str) -> dict:
    diagnosis = {"condition": condition, "rank": rank}
    if klass == "IMP":  # an admission distinguishes the discharge diagnosis from comorbidities
        role = ("DD", "Discharge diagnosis") if rank == 1 else ("CM", "Comorbidity diagnosis")
        diagnosis["use"] = codes.concept(codes.DIAGNOSIS_ROLE, *role)
    return diagnosis


def appointment(slot: Visit, kind: str, patient: dict, reasons: list[dict], *, status: str,
                created: datetime, description: str) -> dict:
    """An Appointment of the patient with the practitioner at the institution of `slot`.

    `slot` is the visit the appointment is for; its urn is not used, as a booked visit has
    no Encounter yet.
    """
    code, display = APPOINTMENT_TYPES[kind]
    return {
        "resourceType": "Appointment",
        "status": status,
        "serviceType": [{"text": TYPES[kind][2]}],
        "appointmentType": codes.concept(codes.APPOINTMENT_TYPE, code, display),
        "reasonReference": reasons,
        "description": description,
        "start": fhir_datetime(slot.start),
        "end": fhir_datetime(slot.end),
        "created": fhir_datetime(created),
        "participant": [
            {"actor": patient, "required": "required", "status": "accepted"},
            {"actor": slot.practitioner.as_reference(), "required": "required", "status": "accepted"},
            {"actor": slot.site.location_reference(), "required": "information-only", "status": "accepted"},
        ],
    }
