"""A visit as syndromic surveillance counts it: day, district, facility, age band, sex, syndromes.

`visit_of(encounter, patient, conditions)` is the pure classification; `gather(uow, id)` reads
what it needs from the store (the Encounter, its Patient, the Conditions it lists as diagnoses
and the Conditions that point at it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ihs.store import search
from ihs.store.store import UnitOfWork
from ihs.surveillance.syndromes import ICD10, classify

# China CDC's influenza surveillance age groups
AGE_BANDS = ((0, "0-4"), (5, "5-14"), (15, "15-24"), (25, "25-59"), (60, "60+"))
NOT_A_VISIT = {"planned", "cancelled", "entered-in-error"}
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Visit:
    encounter: str  # the Encounter's id
    day: date
    district: str
    facility: str
    age_band: str
    sex: str
    syndromes: tuple[str, ...]


def age_band(birth: str | None, on: date) -> str:
    """The age band at `on` of someone born on the FHIR date `birth` (year precision suffices)."""
    if not birth or len(birth) < 4 or not birth[:4].isdigit():
        return UNKNOWN
    year = int(birth[:4])
    month = int(birth[5:7]) if len(birth) >= 7 else 1
    day = int(birth[8:10]) if len(birth) >= 10 else 1
    age = on.year - year - ((on.month, on.day) < (month, day))
    if age < 0:
        return UNKNOWN
    return next(label for start, label in reversed(AGE_BANDS) if age >= start)


def district_of(patient: dict | None) -> str:
    """The district of the patient's home address (else the first address that names one)."""
    addresses = (patient or {}).get("address") or []
    ranked = sorted(addresses, key=lambda a: (a.get("use") != "home", a.get("use") == "old"))
    return next((a["district"] for a in ranked if a.get("district") and a.get("use") != "old"), UNKNOWN)


def visit_day(encounter: dict) -> date | None:
    start = (encounter.get("period") or {}).get("start")
    try:
        return date.fromisoformat(start[:10]) if start and len(start) >= 10 else None
    except ValueError:
        return None


def visit_of(encounter: dict, patient: dict | None, conditions: list[dict]) -> Visit | None:
    """The visit an Encounter counts as, or None when it is no visit (planned, cancelled, undated)."""
    day = visit_day(encounter)
    if encounter.get("status") in NOT_A_VISIT or day is None:
        return None
    codes, complaints = [], []
    for concept in encounter.get("reasonCode") or []:
        complaints.extend(_texts(concept))
        codes.extend(_icd10(concept))
    for condition in conditions:
        if _is_error(condition):
            continue
        concept = condition.get("code") or {}
        found = _icd10(concept)
        codes.extend(found)
        if not found:  # a diagnosis written as free text is read like a complaint
            complaints.extend(_texts(concept))
    facility = (encounter.get("serviceProvider") or {}).get("reference") or UNKNOWN
    return Visit(encounter["id"], day, district_of(patient), facility,
                 age_band((patient or {}).get("birthDate"), day), (patient or {}).get("gender") or UNKNOWN,
                 tuple(classify(codes, complaints)))


def gather(uow: UnitOfWork, encounter_id: str) -> Visit | None:
    """Classify the stored Encounter `encounter_id` (None when it is gone or no visit)."""
    stored = uow.current("Encounter", encounter_id)
    if stored is None or stored.deleted:
        return None
    encounter = stored.resource()
    patient = _read(uow, (encounter.get("subject") or {}).get("reference"), "Patient")
    conditions = {}
    for diagnosis in encounter.get("diagnosis") or []:
        condition = _read(uow, (diagnosis.get("condition") or {}).get("reference"), "Condition")
        if condition:
            conditions[condition["id"]] = condition
    for found in search.find(uow, "Condition", [("encounter", f"Encounter/{encounter_id}")], limit=1000):
        conditions.setdefault(found.id, found.resource())
    return visit_of(encounter, patient, list(conditions.values()))


def _read(uow: UnitOfWork, reference: str | None, res_type: str) -> dict | None:
    parts = (reference or "").split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != res_type:
        return None
    stored = uow.current(res_type, parts[-1])
    return stored.resource() if stored and not stored.deleted else None


def _texts(concept: dict) -> list[str]:
    texts = [concept["text"]] if concept.get("text") else []
    texts.extend(c["display"] for c in concept.get("coding") or [] if c.get("display"))
    return texts


def _icd10(concept: dict) -> list[str]:
    return [c["code"] for c in concept.get("coding") or [] if c.get("system") == ICD10 and c.get("code")]


def _is_error(condition: dict) -> bool:
    status = {c.get("code") for c in (condition.get("verificationStatus") or {}).get("coding") or []}
    return bool(status & {"entered-in-error", "refuted"})
