"""Prescription rules: complete, written by a licensed prescriber, within supply limits, valid when dispensed.

The rules are China's Prescription Administration Measures (处方管理办法, 2007): a prescription is
valid on the day it is written, up to 3 days when the prescriber says so (art. 18); it supplies at
most 7 days, longer for chronic disease when the prescriber notes why (art. 19); and the Long-term
Prescription Management Standard (长期处方管理规范（试行）, 2021): at most 12 weeks.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from ihs.cds.findings import Finding, IHS
from ihs.cds.kb import Source
from ihs.cds.medication import instant, is_long_term, supply_days, times_per_day, validity

MEASURES = Source("处方管理办法 (Prescription Administration Measures, 2007)")
LONG_TERM = Source("长期处方管理规范（试行）(Long-term Prescription Management Standard, 2021)")
SHORT_DAYS, LONG_DAYS, VALID_DAYS = 7, 84, 3
LICENCE_SYSTEMS = tuple(os.environ.get("IHS_PRESCRIBER_LICENCE_SYSTEMS", f"{IHS}/sid/practitioner").split(","))


def completeness(review) -> list[Finding]:
    """Every element a prescription must carry: drug, patient, prescriber, dose, frequency, route, amount."""
    request, critical, warning = review.order.request, [], []
    if not (request.get("medicationCodeableConcept") or request.get("medicationReference")):
        critical.append("药品 medication")
    if not (request.get("subject") or {}).get("reference"):
        critical.append("患者 subject")
    if not (request.get("requester") or {}).get("reference"):
        critical.append("处方医师 requester")
    dosages = request.get("dosageInstruction") or []
    if not any(d.get("doseAndRate") or d.get("maxDosePerPeriod") for d in dosages):
        critical.append("用量 dose")
    if not any(times_per_day(d.get("timing")) or d.get("asNeededBoolean") or d.get("asNeededCodeableConcept")
               for d in dosages):
        critical.append("用药频次 frequency")
    if not any(d.get("route") for d in dosages):
        warning.append("用法 route")
    dispense = request.get("dispenseRequest") or {}
    if not (dispense.get("expectedSupplyDuration") or dispense.get("quantity")):
        warning.append("总量或天数 supply")
    if review.hook == "medication-verify" and not request.get("authoredOn"):
        critical.append("开具日期 authoredOn")
    missing = critical + warning
    if not missing:
        return []
    return [Finding(
        "completeness", "completeness", "critical" if critical else "warning",
        f"处方不完整：缺少{'、'.join(m.split()[0] for m in missing)}",
        f"The prescription for **{review.order.label}** lacks: {', '.join(m.split()[1] for m in missing)}.",
        MEASURES, request, [], [], "MedicationRequest")]


def _expired(period: dict | None, now: datetime) -> bool:
    end = instant((period or {}).get("end"))
    return end is not None and end + timedelta(days=1 if len(period["end"]) == 10 else 0) <= now


def licence_problem(practitioner: dict | None, now: datetime) -> str | None:
    """Why a Practitioner may not prescribe, or None when a current practice licence is on record."""
    if practitioner is None:
        return "处方医师未在本平台登记"
    if practitioner.get("active") is False:
        return "处方医师执业状态为停用"
    licences = [i for i in practitioner.get("identifier", []) if i.get("system") in LICENCE_SYSTEMS and i.get("value")]
    if not licences:
        return "处方医师无执业证书编号"
    if all(_expired(i.get("period"), now) for i in licences):
        return "处方医师执业证书已过期"
    qualifications = practitioner.get("qualification") or []
    if qualifications and all(_expired(q.get("period"), now) for q in qualifications):
        return "处方医师资格已过期"
    return None


def prescriber(review) -> list[Finding]:
    request = review.order.request
    requester = request.get("requester")
    if not (requester or {}).get("reference"):
        return []  # completeness reports the missing requester
    resource = review.record.resolve(requester)
    if resource is None and review.record.fetcher is None:
        return [Finding(
            "prescriber", "prescriber", "warning", "处方医师资质无法核实：未提供医师资料",
            f"The requester {requester.get('reference')} was neither prefetched nor readable from a FHIR server, so "
            "the practice licence could not be checked.", MEASURES, request, [requester], [],
            "MedicationRequest.requester")]
    if resource and resource.get("resourceType") == "PractitionerRole":
        problem = "处方医师岗位已停用" if resource.get("active") is False else None
        resource = review.record.resolve(resource.get("practitioner"))
        problem = problem or licence_problem(resource, review.now)
    elif resource is None or resource.get("resourceType") == "Practitioner":
        problem = licence_problem(resource, review.now)
    else:
        problem = f"处方须由医师开具，而非 {resource.get('resourceType')}"
    if problem is None:
        return []
    return [Finding(
        "prescriber", "prescriber", "critical", f"处方医师资质：{problem}",
        f"The requester {requester.get('reference')} cannot prescribe: {problem}. A prescription must be written "
        "by a physician with a current practice licence (处方管理办法 art. 8).",
        MEASURES, request, [requester], [], "MedicationRequest.requester")]


def supply(review) -> list[Finding]:
    """Supply length within the limits, and a validity period of at most 3 days."""
    request, findings = review.order.request, []
    days = supply_days(request)
    long_term = is_long_term(request)
    noted = bool(request.get("note"))
    if days is not None and days > LONG_DAYS:
        findings.append(Finding(
            "supply", "supply:long", "critical", f"处方用量超限：{days:g}天，长期处方最长不超过{LONG_DAYS // 7}周",
            f"The prescription supplies {days:g} days; even a long-term prescription may supply at most {LONG_DAYS} "
            "days.", LONG_TERM, request, [], [], "MedicationRequest.dispenseRequest.expectedSupplyDuration"))
    elif days is not None and days > SHORT_DAYS and not long_term and not noted:
        findings.append(Finding(
            "supply", "supply:short", "warning", f"处方用量超限：{days:g}天，一般不超过{SHORT_DAYS}天，须注明理由",
            f"The prescription supplies {days:g} days; a prescription supplies at most {SHORT_DAYS} days unless it "
            "is a long-term prescription or the prescriber notes why (art. 19).",
            MEASURES, request, [], [], "MedicationRequest.dispenseRequest.expectedSupplyDuration"))
    window = validity(request) if request.get("authoredOn") or \
        (request.get("dispenseRequest") or {}).get("validityPeriod") else None
    if window and not long_term and window[1] - window[0] > timedelta(days=VALID_DAYS, hours=1):
        findings.append(Finding(
            "supply", "supply:validity", "warning", f"处方有效期超过{VALID_DAYS}天",
            f"A prescription is valid on the day it is written and at most {VALID_DAYS} days when the prescriber "
            "says so (art. 18).", MEASURES, request, [], [], "MedicationRequest.dispenseRequest.validityPeriod"))
    return findings


def dispensable(review) -> list[Finding]:
    """At dispensing: the prescription is active, an order, and within its validity."""
    request, problems = review.order.request, []
    if request.get("status") != "active":
        problems.append(f"处方状态为 {request.get('status')}，非有效（active）")
    if request.get("intent") not in ("order", "original-order", "instance-order", "reflex-order", "filler-order"):
        problems.append(f"处方意图为 {request.get('intent')}，非医嘱")
    window = validity(request)
    if window is None:
        problems.append("处方无开具日期")
    elif review.now < window[0]:
        problems.append(f"处方尚未生效（{window[0].date()} 起）")
    elif review.now >= window[1]:
        problems.append(f"处方已过期（有效至 {(window[1] - timedelta(seconds=1)).date()}）")
    if not problems:
        return []
    return [Finding(
        "validity", "validity", "critical", f"处方失效：{'；'.join(problems)}",
        "The prescription cannot be dispensed: " + "; ".join(problems) + ".",
        MEASURES, request, [], [], "MedicationRequest.dispenseRequest.validityPeriod")]
