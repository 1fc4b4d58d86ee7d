"""Patient/[id]/$everything across institutions: the records of every source Patient of one person.

The person is the golden record (asked directly, or reached from a source record's `refer` link)
and every source record linking to it; each one's Patient compartment (the R4 CompartmentDefinition)
is read through search and the union answered once per resource. `_type` narrows the types and
`_since` keeps resources changed since an instant. `start` and `end` keep the care in a date range
(R4: care dates, not record currency dates): a resource whose care date (`CARE_DATE`) overlaps the
range, and every resource without one (a Patient, a Coverage, an Observation without effective[x]).
"""
from __future__ import annotations

import re

from ihs.fhir.definitions import compartments
from ihs.fhir.errors import FhirError, NotFound, Gone
from ihs.mpi.features import is_golden
from ihs.mpi.index import golden_id_of
from ihs.store import search
from ihs.store.store import StoredResource, UnitOfWork

MAX_RESOURCES = 10_000
PAGE = 1000

# the date search parameter that says when the care a resource records took place, by type
CARE_DATE = {
    "Account": "period", "AdverseEvent": "date", "AllergyIntolerance": "date", "Appointment": "date",
    "Basic": "created", "CarePlan": "date", "CareTeam": "date", "ChargeItem": "occurrence", "Claim": "created",
    "ClaimResponse": "created", "ClinicalImpression": "date", "Communication": "sent",
    "CommunicationRequest": "authored", "Composition": "date", "Condition": "recorded-date", "Consent": "date",
    "CoverageEligibilityRequest": "created", "CoverageEligibilityResponse": "created",
    "DetectedIssue": "identified", "DeviceRequest": "authored-on", "DiagnosticReport": "date",
    "DocumentManifest": "created", "DocumentReference": "date", "Encounter": "date", "EpisodeOfCare": "date",
    "ExplanationOfBenefit": "created", "FamilyMemberHistory": "date", "Flag": "date", "Goal": "start-date",
    "ImagingStudy": "started", "Immunization": "date", "ImmunizationEvaluation": "date",
    "ImmunizationRecommendation": "date", "Invoice": "date", "List": "date", "MeasureReport": "period",
    "Media": "created", "MedicationAdministration": "effective-time", "MedicationDispense": "whenhandedover",
    "MedicationRequest": "authoredon", "MedicationStatement": "effective", "NutritionOrder": "datetime",
    "Observation": "date", "Procedure": "date", "QuestionnaireResponse": "authored", "RequestGroup": "authored",
    "ResearchSubject": "date", "RiskAssessment": "date", "ServiceRequest": "authored", "Specimen": "collected",
    "SupplyRequest": "date", "VisionPrescription": "datewritten",
}
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def linked_patients(uow: UnitOfWork, patient_id: str) -> list[str]:
    """The ids of the person's Patients: the golden record first, then its sources (or just the one record)."""
    stored = uow.current("Patient", patient_id)
    if stored is None:
        raise NotFound(f"Patient/{patient_id} does not exist")
    if stored.deleted:
        raise Gone(f"Patient/{patient_id} was deleted")
    patient = stored.resource()
    golden = patient_id if is_golden(patient) else golden_id_of(patient)
    if golden is None:
        return [patient_id]
    sources = search.find(uow, "Patient", [("link", f"Patient/{golden}")], limit=1000)
    ids = [golden] + sorted(s.id for s in sources if not is_golden(s.resource()))
    return list(dict.fromkeys(ids + [patient_id]))


def _types(wanted: str | None) -> list[str]:
    definition = compartments()["Patient"]
    if not wanted:
        # The patient's record, not the trail of who looked at it (ask for _type=AuditEvent for that).
        return sorted(t for t in definition if t != "AuditEvent")
    types = [t.strip() for t in wanted.split(",") if t.strip()]
    unknown = [t for t in types if t not in definition]
    if unknown:
        raise FhirError(f"_type: {', '.join(unknown)} are never in a Patient compartment", expression="_type")
    return types


def care_range(start: str | None, end: str | None) -> list[tuple[str, str]]:
    """The search criteria of a care date range (empty when neither end is given); checks the dates."""
    criteria = []
    for name, value, prefix in (("start", start, "ge"), ("end", end, "le")):
        if value is None:
            continue
        if not _DATE.fullmatch(value):
            raise FhirError(f"{name} must be a date (YYYY, YYYY-MM or YYYY-MM-DD), not '{value}'", expression=name)
        criteria.append((prefix, value))
    # compared as the first day of the start and the last day of the end (either may be a year or a month)
    if len(criteria) == 2 and start + "-01-01"[len(start) - 4:] > end + "-12-31"[len(end) - 4:]:
        raise FhirError(f"start ({start}) is after end ({end})", expression="start")
    return criteria


def everything(uow: UnitOfWork, patient_id: str, *, types: str | None = None, since: str | None = None,
               start: str | None = None, end: str | None = None) -> list[StoredResource]:
    """Every resource in the compartments of the person's Patients, each once; with `start`/`end`, only
    the care in that date range and what has no care date."""
    wanted = _types(types)
    care = care_range(start, end)
    query = [("_lastUpdated", f"ge{since}")] if since else []
    found: dict[tuple[str, str], StoredResource] = {}
    people = linked_patients(uow, patient_id)
    for pid in people:
        _collect(uow, found, None, query, pid, wanted)
    if care:
        _keep_care_in_range(uow, found, query, people, care)
    patients = [found.pop(("Patient", pid)) for pid in people if ("Patient", pid) in found]
    return patients + [found[key] for key in sorted(found)]


def _collect(uow: UnitOfWork, found: dict, res_type: str | None, query: list[tuple[str, str]], pid: str,
             types: list[str] | None = None) -> set[tuple[str, str]]:
    """Add what a compartment search finds to `found`; answers the keys it found."""
    keys = set()
    offset = 0
    while True:
        result = search.search(uow, res_type, query + [("_count", str(PAGE)), ("_offset", str(offset)),
                                                       ("_total", "none")],
                               compartment=("Patient", pid), compartment_types=types)
        for stored in result.matches:
            found.setdefault((stored.type, stored.id), stored)
            keys.add((stored.type, stored.id))
        if len(found) > MAX_RESOURCES:
            raise FhirError(f"the record holds more than {MAX_RESOURCES} resources; narrow it with _type or "
                            "_since, or use $export", 422, code="too-costly")
        if not result.has_next:
            return keys
        offset += PAGE


def _keep_care_in_range(uow: UnitOfWork, found: dict, query: list[tuple[str, str]], people: list[str],
                        care: list[tuple[str, str]]) -> None:
    """Drop the resources whose care date lies outside the range; those without one stay."""
    for res_type in sorted({t for t, _ in found if t in CARE_DATE}):
        param = CARE_DATE[res_type]
        kept: set[tuple[str, str]] = set()
        for pid in people:
            kept |= _collect(uow, {}, res_type, query + [(param, f"{prefix}{value}") for prefix, value in care], pid)
            kept |= _collect(uow, {}, res_type, query + [(f"{param}:missing", "true")], pid)
        for key in [k for k in found if k[0] == res_type and k not in kept]:
            del found[key]
