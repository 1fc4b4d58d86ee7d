"""Dose: the day's total above the adult maximum, or above the limit for the patient's renal function."""
from __future__ import annotations

from ihs.cds import suggest
from ihs.cds.findings import Finding
from ihs.cds.medication import daily_dose

ADULT = 18  # the formulary's doses are adult doses; children are dosed by weight


def check(review) -> list[Finding]:
    order, drug = review.order, review.order.drug
    entry = drug.formulary if drug else None
    if entry is None or entry.dose is None or (review.age is not None and review.age < ADULT):
        return []
    unit = entry.dose.unit
    daily = daily_dose(order.request, unit)
    if daily is None:
        return []
    findings = []
    if entry.dose.max is not None and daily > entry.dose.max * 1.0001:
        findings.append(Finding(
            "dose", f"dose:max:{drug.key}", "critical",
            f"超剂量：{drug.zh or drug.key} 每日 {daily:g} {unit}，超过最大日剂量 {entry.dose.max:g} {unit}",
            f"**{order.label}** gives {daily:g} {unit} a day; the adult maximum is {entry.dose.max:g} {unit} "
            f"(usual {entry.dose.usual:g} {unit}).\n\nSource: {entry.dose.source.label}",
            entry.dose.source, order.request, [],
            suggest.present(suggest.lower_dose(order, entry.dose.max / daily, entry.dose.max, unit)),
            "MedicationRequest.dosageInstruction"))
    findings += _renal(review, daily, unit)
    return findings


def _renal(review, daily: float, unit: str) -> list[Finding]:
    order, drug, egfr = review.order, review.order.drug, review.egfr
    if egfr is None:
        return []
    applicable = [limit for limit in drug.formulary.renal if egfr[0] < limit.egfr_below]
    if not applicable:
        return []
    limit = min(applicable, key=lambda item: item.egfr_below)  # the band the patient's eGFR falls in
    measured = f"eGFR {egfr[0]:g} mL/min/1.73 m²（{egfr[1][:10]}）"
    if limit.avoid:
        return [Finding(
            "renal", f"renal:avoid:{drug.key}", "critical",
            f"肾功能禁忌：{drug.zh or drug.key}，{measured}，低于 {limit.egfr_below:g} 时禁用",
            f"**{order.label}** should not be given below an eGFR of {limit.egfr_below:g}; the latest is "
            f"{egfr[0]:g}.\n\nSource: {limit.source.label}",
            limit.source, order.request, [], suggest.present(suggest.remove(order)), "MedicationRequest.medication")]
    if limit.max is not None and daily > limit.max * 1.0001:
        return [Finding(
            "renal", f"renal:max:{drug.key}", "warning",
            f"肾功能减量：{drug.zh or drug.key} 每日 {daily:g} {unit}，{measured} 时不超过 {limit.max:g} {unit}",
            f"**{order.label}** gives {daily:g} {unit} a day; below an eGFR of {limit.egfr_below:g} the limit is "
            f"{limit.max:g} {unit} a day (latest eGFR {egfr[0]:g}).\n\nSource: {limit.source.label}",
            limit.source, order.request, [],
            suggest.present(suggest.lower_dose(order, limit.max / daily, limit.max, unit)),
            "MedicationRequest.dosageInstruction")]
    return []
