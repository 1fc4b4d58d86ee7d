"""Dispensing: a MedicationDispense is recorded only against a valid prescription (no 无方购药).

A prescription-only drug needs an `authorizingPrescription` that exists, is for the same patient
and the same drug, has dispenses left, and passes the pharmacist's pre-dispensing audit (the
medication-verify CDS service: every prescription check plus validity on the day). Over-the-counter
drugs of the formulary may be handed over without one. A refused dispense is stored as a
DetectedIssue too, for supervision.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson

from ihs.cds import gate, issues, service
from ihs.cds.cards import card, card_uuid
from ihs.cds.findings import Finding
from ihs.cds.issues import fhir_instant
from ihs.cds.kb import Source, knowledge_base
from ihs.cds.medication import LOCAL
from ihs.cds.record import PatientRecord, StoreFetcher
from ihs.cds.review import medication_concept
from ihs.fhir.errors import BusinessRule, FhirError
from ihs.fhir.validation import validate
from ihs.store.search import find

MEASURES = Source("处方管理办法 (Prescription Administration Measures, 2007); 药品管理法 (Drug Administration Law, 2019)")


@dataclass
class Dispensing:
    """What dispensing did: the stored MedicationDispense, or why it was refused."""

    dispense: dict | None = None
    blocked: FhirError | None = None


def _refuse(uow, dispense: dict, problem: str, now: datetime) -> Dispensing:
    """Store a 无方购药 DetectedIssue for the attempt and refuse it."""
    digest = hashlib.sha256(orjson.dumps(dispense, option=orjson.OPT_SORT_KEYS)).hexdigest()
    finding = Finding("no-prescription", f"no-prescription:{problem}", "critical", f"无方购药：{problem}",
                      f"The dispense cannot be recorded: {problem}. A prescription-only drug is dispensed only on "
                      "a valid prescription.", MEASURES, None, [], [], "MedicationDispense.authorizingPrescription")
    shown = card(finding, card_uuid(f"dispense/{digest}", finding.key), pharmacist=True)
    patient = (dispense.get("subject") or {}).get("reference") or "Patient/unknown"
    facility = next((p["actor"]["reference"] for p in dispense.get("performer", [])
                     if (p.get("actor") or {}).get("reference", "").startswith("Organization/")), None)
    issues.record_shown(uow, [issues.detected_issue(shown, finding, patient=patient, service="dispensing",
                                                    hook="medication-dispense", prescriber=None, facility=facility,
                                                    now=now)])
    return Dispensing(blocked=BusinessRule(f"无方购药 (dispensing without a valid prescription): {problem}",
                                           "MedicationDispense.authorizingPrescription"))


def _dispensed(uow, prescription: str) -> int:
    """How many completed dispenses the prescription has had."""
    return len(find(uow, "MedicationDispense", [("prescription", prescription), ("status", "completed")], limit=1000))


def dispense(uow, resource: dict, *, overrides: list[gate.Override] = (), user: str | None = None,
             now: datetime | None = None) -> Dispensing:
    """Record `resource` (a MedicationDispense) if a valid prescription authorises it."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "MedicationDispense":
        raise FhirError("the body must be a MedicationDispense (or Parameters with one in 'dispense')")
    now = now or datetime.now(LOCAL)
    resource = dict(resource, status=resource.get("status") or "completed")
    resource.setdefault("whenHandedOver", fhir_instant(now))
    validate(resource)
    kb = knowledge_base()
    drug = kb.resolve(medication_concept(resource, PatientRecord(fetcher=StoreFetcher(uow))))
    prescriptions = [p.get("reference") for p in resource.get("authorizingPrescription", []) if p.get("reference")]
    if not prescriptions:
        if drug and drug.formulary and drug.formulary.otc:
            uow.create(resource)
            return Dispensing(dispense=resource)
        return _refuse(uow, resource, "处方药无处方", now)
    ref = prescriptions[0]
    stored = uow.current("MedicationRequest", ref.removeprefix("MedicationRequest/")) \
        if ref.startswith("MedicationRequest/") else None
    if stored is None or stored.deleted:
        return _refuse(uow, resource, f"处方 {ref} 不存在", now)
    prescription = stored.resource()
    if (prescription.get("subject") or {}).get("reference") != (resource.get("subject") or {}).get("reference"):
        return _refuse(uow, resource, f"处方 {ref} 不是该患者的处方", now)
    prescribed = kb.resolve(medication_concept(prescription, PatientRecord(fetcher=StoreFetcher(uow))))
    if drug is None or prescribed is None or drug.key != prescribed.key:
        return _refuse(uow, resource, f"调配药品与处方 {ref} 不符", now)
    allowed = 1 + int((prescription.get("dispenseRequest") or {}).get("numberOfRepeatsAllowed") or 0)
    if _dispensed(uow, ref) >= allowed:
        return _refuse(uow, resource, f"处方 {ref} 已调配 {allowed} 次，不可再次调配", now)
    body = {"hook": "medication-verify", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": user or "unknown", "patientId": prescription["subject"]["reference"].split("/", 1)[1],
                        "medication": prescription}}
    result = service.run(uow, service.service("pharmacist-verification"), body, fetcher=StoreFetcher(uow),
                         scope=f"{ref}/_history/{stored.version}/verify", now=now)
    overrides = list(overrides)
    gate.record_overrides(uow, result, overrides, author=user, when=now)
    if gate.blocking(result, overrides):
        return Dispensing(blocked=gate.Blocked("dispensing", result, overrides))
    if result.cards:
        resource["detectedIssue"] = [{"reference": f"DetectedIssue/{c['uuid']}"} for c in result.cards]
    uow.create(resource)
    return Dispensing(dispense=resource)
