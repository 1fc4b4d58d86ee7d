"""Notifiable-disease case reports: a confirmed notifiable diagnosis becomes a FHIR document for the CDC.

The report is a document Bundle (Composition first, then the Patient, the Condition, the
Encounter and the reporting Organization, as they were when reported) and a Task that carries
it to the CDC: status `requested` with the legal deadline in restriction.period.end; the CDC
moves it to received, accepted, completed or rejected (with a statusReason) through the REST
API, which is the report's status. One Task per Condition (identifier CASE_REPORT|Condition/id),
so a change delivered twice reports once.
"""
from __future__ import annotations

import os
import tomllib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources

from ihs.fhir.errors import BusinessRule, NotFound
from ihs.fhir.validation import validate
from ihs.store import search
from ihs.store.store import Store, UnitOfWork
from ihs.surveillance.syndromes import ICD10

CASE_REPORT = "https://ihs.example.org/fhir/sid/case-report"
NOTIFIABLE_CLASS = "https://ihs.example.org/fhir/CodeSystem/notifiable-class"
LOINC = "http://loinc.org"
# the CDC organisation the reports go to: a search on Organization, configurable per region
CDC_QUERY = os.environ.get("IHS_CDC_ORGANIZATION", "identifier=https://ihs.example.org/fhir/sid/organization|HZ-CDC")
PRIORITY = {"A": "stat", "B": "asap", "C": "routine"}


@dataclass(frozen=True)
class Notifiable:
    disease: str
    chinese: str
    disease_class: str  # A, B or C
    class_chinese: str
    hours: int


@lru_cache(maxsize=1)
def _table() -> list[tuple[str, Notifiable]]:
    raw = tomllib.loads(resources.files("ihs.surveillance").joinpath("notifiable.toml").read_text("utf-8"))
    table = []
    for disease_class, entry in raw.items():
        for disease in entry["diseases"]:
            notifiable = Notifiable(disease["name"], disease["chinese"], disease_class, entry["chinese"],
                                    disease.get("hours", entry["hours"]))
            table.extend((prefix, notifiable) for prefix in disease["icd10"])
    return sorted(table, key=lambda item: -len(item[0]))  # the most specific category wins


def notifiable(icd10_code: str) -> Notifiable | None:
    """The notifiable disease an ICD-10 code falls under, if any."""
    code = icd10_code.strip().upper()
    return next((n for prefix, n in _table() if code.startswith(prefix)), None)


def notifiable_diagnosis(condition: dict) -> tuple[str, Notifiable] | None:
    """(ICD-10 code, disease) when the Condition is a confirmed notifiable diagnosis."""
    verification = {c.get("code") for c in (condition.get("verificationStatus") or {}).get("coding") or []}
    if "confirmed" not in verification:
        return None
    for coding in (condition.get("code") or {}).get("coding") or []:
        if coding.get("system") == ICD10 and coding.get("code"):
            found = notifiable(coding["code"])
            if found:
                return coding["code"], found
    return None


def existing_report(uow: UnitOfWork, condition_id: str):
    found = search.find(uow, "Task", [("identifier", f"{CASE_REPORT}|Condition/{condition_id}")], limit=1)
    return found[0] if found else None


def report_if_notifiable(store: Store, condition_id: str, *, base: str | None = None):
    """Report the Condition when it is a confirmed notifiable diagnosis; the Task, or None."""
    with store.session(write=True) as uow:
        stored = uow.current("Condition", condition_id)
        if stored is None or stored.deleted:
            return None
        condition = stored.resource()
        if notifiable_diagnosis(condition) is None:
            return None
        return existing_report(uow, condition_id) or _report(uow, condition, base)


def report(uow: UnitOfWork, condition_id: str, *, base: str | None = None, requester: dict | None = None):
    """Report this Condition (the explicit $case-report): its Task, made now or before."""
    stored = uow.current("Condition", condition_id)
    if stored is None or stored.deleted:
        raise NotFound(f"Condition/{condition_id} is not known")
    condition = stored.resource()
    if notifiable_diagnosis(condition) is None:
        raise BusinessRule(f"Condition/{condition_id} is not a confirmed diagnosis of a notifiable disease "
                           "(an ICD-10 code of classes A, B or C with verificationStatus confirmed)",
                           "Condition.code")
    return existing_report(uow, condition_id) or _report(uow, condition, base, requester)


def _report(uow: UnitOfWork, condition: dict, base: str | None, requester: dict | None = None):
    code, disease = notifiable_diagnosis(condition)
    base = (base or os.environ.get("IHS_BASE_URL") or "http://127.0.0.1:8080").rstrip("/")
    now = datetime.now(timezone.utc)
    patient = _resolve(uow, condition.get("subject"))
    encounter = _resolve(uow, condition.get("encounter"))
    reporter = _resolve(uow, (encounter or {}).get("serviceProvider"))
    composition = _composition(condition, disease, code, patient, encounter, reporter, now)
    included = [r for r in (patient, condition, encounter, reporter) if r]
    document = {
        "resourceType": "Bundle",
        "identifier": {"system": f"{CASE_REPORT}/document", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": _instant(now),
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": composition}]
                 + [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in included],
    }
    validate(document)
    bundle = uow.create(document)
    diagnosed = condition.get("recordedDate") or condition.get("onsetDateTime")
    due = _deadline(diagnosed, now, disease.hours)
    task = {
        "resourceType": "Task",
        "identifier": [{"system": CASE_REPORT, "value": f"Condition/{condition['id']}"}],
        "status": "requested",
        "intent": "order",
        "priority": PRIORITY[disease.disease_class],
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill",
                             "display": "Fulfill the focal request"}],
                 "text": f"传染病报告 {disease.chinese} / notifiable disease case report: {disease.disease}"},
        "description": f"{disease.class_chinese}传染病 {disease.chinese} ({disease.disease}, class {disease.disease_class},"
                       f" ICD-10 {code}): report within {disease.hours} hours of diagnosis",
        "focus": {"reference": f"Bundle/{bundle.id}"},
        "for": condition.get("subject"),
        "authoredOn": _instant(now),
        "lastModified": _instant(now),
        "owner": cdc_reference(uow),
        "reasonReference": {"reference": f"Condition/{condition['id']}"},
        "restriction": {"period": {"end": _instant(due)}},
    }
    if encounter:
        task["encounter"] = {"reference": f"Encounter/{encounter['id']}"}
    if requester or reporter:
        task["requester"] = requester or {"reference": f"Organization/{reporter['id']}"}
    validate(task)
    return uow.create(task)


def _composition(condition, disease: Notifiable, code, patient, encounter, reporter, now) -> dict:
    sections = [{"title": "诊断 Diagnosis",
                 "code": {"coding": [{"system": LOINC, "code": "29548-5", "display": "Diagnosis Narrative"}]},
                 "entry": [{"reference": f"Condition/{condition['id']}"}]}]
    if encounter:
        sections.append({"title": "就诊 Encounter",
                         "code": {"coding": [{"system": LOINC, "code": "46240-8",
                                              "display": "History of Hospitalizations+Outpatient visits Narrative"}]},
                         "entry": [{"reference": f"Encounter/{encounter['id']}"}]})
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "55751-2", "display": "Public health Case report"}],
                 "text": "传染病报告卡"},
        "category": [{"coding": [{"system": NOTIFIABLE_CLASS, "code": disease.disease_class,
                                  "display": f"Class {disease.disease_class}"}], "text": disease.class_chinese}],
        "subject": condition.get("subject"),
        "date": _instant(now),
        "author": [{"reference": f"Organization/{reporter['id']}"}] if reporter else [{"display": "IHS"}],
        "title": f"传染病报告卡 {disease.chinese} / Notifiable disease case report: {disease.disease} ({code})",
        "section": sections,
    }
    if encounter:
        composition["encounter"] = {"reference": f"Encounter/{encounter['id']}"}
    return composition


def _resolve(uow: UnitOfWork, reference: dict | None) -> dict | None:
    parts = ((reference or {}).get("reference") or "").split("/_history/")[0].split("/")
    if len(parts) < 2:
        return None
    stored = uow.current(parts[-2], parts[-1])
    return stored.resource() if stored and not stored.deleted else None


def cdc_reference(uow: UnitOfWork) -> dict:
    """A reference to the CDC organisation (CDC_QUERY), or a display-only one when none is stored."""
    query = [tuple(part.split("=", 1)) for part in CDC_QUERY.split("&") if "=" in part]
    found = search.find(uow, "Organization", query, limit=1)
    return {"reference": f"Organization/{found[0].id}"} if found else {"display": "疾病预防控制中心 (CDC)"}


def _deadline(diagnosed: str | None, now: datetime, hours: int) -> datetime:
    try:
        start = datetime.fromisoformat(diagnosed.replace("Z", "+00:00")) if diagnosed and "T" in diagnosed else now
    except ValueError:
        start = now
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    return start + timedelta(hours=hours)


def _instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
