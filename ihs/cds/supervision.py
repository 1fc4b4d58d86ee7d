"""Prescribing-supervision indicators per facility and prescriber, for the regulator's dashboard.

- alerts by severity: DetectedIssues raised at the decision points (signing, the pharmacist's
  audit, dispensing), by the facility and prescriber of the prescription concerned;
- override rate: of the warning and critical alerts, the share a clinician overrode;
- antibiotic prescription rate (抗菌药物处方比例): of the prescriptions (one encounter's orders, or
  an order on its own), the share with an antibacterial for systemic use (ATC J01).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from ihs.cds import issues
from ihs.cds.attribution import facility_of, prescriber_of
from ihs.cds.kb import knowledge_base
from ihs.cds.review import medication_concept
from ihs.cds.record import PatientRecord, StoreFetcher
from ihs.store.search import search

DECISION_HOOKS = {"order-sign", "medication-verify", "medication-dispense"}
SIGNED = "active,completed,stopped,on-hold"
PAGE = 1000


def _all(uow, res_type: str, query: list[tuple[str, str]]):
    """Every match of a search, page by page, with the resources it included."""
    offset = 0
    while True:
        result = search(uow, res_type, query + [("_count", str(PAGE)), ("_offset", str(offset)), ("_total", "none")])
        yield result.matches, result.included
        if not result.has_next:
            return
        offset += len(result.matches)


def _empty() -> dict:
    return {"prescriptions": 0, "antibioticPrescriptions": 0, "alerts": {"critical": 0, "warning": 0, "info": 0},
            "overridden": {"critical": 0, "warning": 0}, "alertsByCheck": defaultdict(int)}


def _rates(row: dict) -> dict:
    shown = row["alerts"]["critical"] + row["alerts"]["warning"]
    overridden = row["overridden"]["critical"] + row["overridden"]["warning"]
    row["overrideRate"] = round(overridden / shown, 4) if shown else None
    row["antibioticRate"] = round(row["antibioticPrescriptions"] / row["prescriptions"], 4) \
        if row["prescriptions"] else None
    row["alertsByCheck"] = dict(row["alertsByCheck"])
    return row


def indicators(uow, start: date, end: date, *, facility: str | None = None, prescriber: str | None = None) -> dict:
    """The indicators over prescriptions written and alerts raised from `start` to `end` (inclusive)."""
    window = [("ge", start.isoformat()), ("lt", (end + timedelta(days=1)).isoformat())]
    by_facility, by_prescriber = defaultdict(_empty), defaultdict(_empty)
    record = PatientRecord(fetcher=StoreFetcher(uow))
    kb = knowledge_base()

    def rows(fac: str | None, pre: str | None) -> list[dict]:
        if (facility and fac != facility) or (prescriber and pre != prescriber):
            return []
        return [by_facility[fac or "unknown"], by_prescriber[(pre or "unknown", fac or "unknown")]]

    for matches, included in _all(uow, "MedicationRequest", [("authoredon", p + d) for p, d in window]
                                  + [("status", SIGNED), ("_include", "MedicationRequest:encounter")]):
        for resource in (s.resource() for s in included):
            record.cache[f"{resource['resourceType']}/{resource['id']}"] = resource
        prescriptions: dict[tuple, bool] = {}
        for request in (s.resource() for s in matches):
            pre, fac = prescriber_of(request, record.resolve), facility_of(request, record.resolve)
            key = (pre, fac, (request.get("encounter") or {}).get("reference") or request["id"])
            drug = kb.resolve(medication_concept(request, record))
            prescriptions[key] = prescriptions.get(key, False) or bool(drug and drug.antibacterial)
        for (pre, fac, _), antibiotic in prescriptions.items():
            for row in rows(fac, pre):
                row["prescriptions"] += 1
                row["antibioticPrescriptions"] += antibiotic
    for matches, _ in _all(uow, "DetectedIssue", [("identified", p + d) for p, d in window]):
        for issue in (s.resource() for s in matches):
            if issues.extension(issue, issues.EXT_HOOK) not in DECISION_HOOKS:
                continue
            indicator = issues.INDICATOR.get(issue.get("severity"), "info")
            check = next((c["code"] for c in issue["code"]["coding"] if c["system"] == issues.CHECK_SYSTEM), "other")
            for row in rows(issues.extension(issue, issues.EXT_FACILITY), issues.extension(issue, issues.EXT_PRESCRIBER)):
                row["alerts"][indicator] += 1
                row["alertsByCheck"][check] += 1
                if indicator != "info" and issues.decided(issue, "overridden"):
                    row["overridden"][indicator] += 1
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "facilities": [dict(_rates(row), facility=key) for key, row in sorted(by_facility.items())],
        "prescribers": [dict(_rates(row), prescriber=key[0], facility=key[1])
                        for key, row in sorted(by_prescriber.items())],
    }
