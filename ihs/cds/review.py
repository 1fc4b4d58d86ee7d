"""Reviewing orders: which checks run at which hook, over which orders and co-medications."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from ihs.cds.findings import Finding
from ihs.cds.kb import Drug, KnowledgeBase
from ihs.cds.medication import age_on, instant
from ihs.cds.record import PatientRecord

EGFR_CODES = {"33914-3", "62238-1", "98979-8"}  # LOINC: eGFR (MDRD, CKD-EPI, CKD-EPI 2021)


@dataclass
class Order:
    """A MedicationRequest under review or taken into account, with the drug it names."""

    request: dict
    drug: Drug | None

    @property
    def ref(self) -> str | None:
        return f"MedicationRequest/{self.request['id']}" if self.request.get("id") else None

    @property
    def label(self) -> str:
        if self.drug:
            return self.drug.label
        concept = self.request.get("medicationCodeableConcept") or {}
        return concept.get("text") or next((c.get("display") for c in concept.get("coding", []) if c.get("display")),
                                           "unnamed medication")

    def reference(self) -> dict:
        return {"reference": self.ref, "display": self.label} if self.ref else {"display": self.label}


@dataclass
class Review:
    """One order under review, in the light of the patient's record and other medicines."""

    kb: KnowledgeBase
    record: PatientRecord
    order: Order
    others: list[Order]
    now: datetime
    hook: str

    @cached_property
    def age(self) -> float | None:
        return age_on((self.record.one("patient") or {}).get("birthDate"), self.now.date())

    @cached_property
    def egfr(self) -> tuple[float, str] | None:
        """The latest eGFR on record (mL/min/1.73 m2) and when it was measured."""
        latest = None
        for obs in self.record.many("egfr"):
            codes = {c.get("code") for c in (obs.get("code") or {}).get("coding", [])}
            value = (obs.get("valueQuantity") or {}).get("value")
            when = obs.get("effectiveDateTime") or obs.get("issued") or ""
            if codes & EGFR_CODES and value is not None and obs.get("status") != "entered-in-error":
                if latest is None or when > latest[1]:
                    latest = (float(value), when)
        return latest


def medication_concept(request: dict, record: PatientRecord) -> dict | None:
    """The CodeableConcept of the medication a MedicationRequest names, following medicationReference."""
    if request.get("medicationCodeableConcept"):
        return request["medicationCodeableConcept"]
    medication = record.resolve(request.get("medicationReference"), contained_in=request)
    return (medication or {}).get("code") or ({"text": request["medicationReference"]["display"]}
                                              if (request.get("medicationReference") or {}).get("display") else None)


def order_of(kb: KnowledgeBase, record: PatientRecord, request: dict) -> Order:
    return Order(request, kb.resolve(medication_concept(request, record)))


def active_orders(kb: KnowledgeBase, record: PatientRecord, exclude: set[str]) -> list[Order]:
    """The patient's active medication orders, leaving out the ones under review."""
    found = []
    for request in record.many("medications"):
        ref = f"MedicationRequest/{request.get('id')}"
        if request.get("resourceType") == "MedicationRequest" and request.get("status") == "active" \
                and ref not in exclude:
            found.append(order_of(kb, record, request))
    return found


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, unique = set(), []
    for finding in findings:
        if finding.key not in seen:
            seen.add(finding.key)
            unique.append(finding)
    return unique


def review_orders(checks: list, kb: KnowledgeBase, record: PatientRecord, orders: list[dict], *, hook: str,
                  now: datetime, targets: set[str] | None = None) -> list[Finding]:
    """Run `checks` on each order (or on those whose id is in `targets`) against the patient's medicines."""
    reviewed = [order_of(kb, record, request) for request in orders]
    exclude = {o.ref for o in reviewed if o.ref}
    current = active_orders(kb, record, exclude)
    findings = []
    for order in reviewed:
        if targets is not None and order.ref not in targets and order.request.get("id") not in targets:
            continue
        others = current + [o for o in reviewed if o is not order]
        review = Review(kb, record, order, others, now, hook)
        for check in checks:
            findings.extend(check(review))
    return _dedupe(findings)


def review_current(checks: list, kb: KnowledgeBase, record: PatientRecord, *, now: datetime) -> list[Finding]:
    """Run `checks` over the patient's current medicines, each against the others (patient-view)."""
    current = active_orders(kb, record, set())
    findings = []
    for index, order in enumerate(current):
        review = Review(kb, record, order, current[:index] + current[index + 1:], now, "patient-view")
        for check in checks:
            findings.extend(check(review))
    return _dedupe(findings)


def is_active_condition(condition: dict, now: datetime) -> bool:
    statuses = {c.get("code") for c in (condition.get("clinicalStatus") or {}).get("coding", [])}
    verification = {c.get("code") for c in (condition.get("verificationStatus") or {}).get("coding", [])}
    if statuses and not statuses & {"active", "recurrence", "relapse"}:
        return False
    if verification & {"refuted", "entered-in-error"}:
        return False
    abated = instant(condition.get("abatementDateTime"))
    return abated is None or abated > now
