"""Drug allergy: the ordered drug, its class, or a cross-reactive class is on the patient's allergy list."""
from __future__ import annotations

from ihs.cds import suggest
from ihs.cds.findings import Finding, reference_to


def _codes(concept: dict | None) -> set[str]:
    return {c.get("code") for c in (concept or {}).get("coding", [])}


def recorded(allergy: dict) -> bool:
    """An allergy that still stands: active (or unstated), not refuted or entered in error, not to food."""
    if _codes(allergy.get("clinicalStatus")) - {"active"}:
        return False
    if _codes(allergy.get("verificationStatus")) & {"refuted", "entered-in-error"}:
        return False
    return not set(allergy.get("category", [])) - {"medication", "biologic"}


def check(review) -> list[Finding]:
    order = review.order
    if order.drug is None:
        return []
    findings = []
    for allergy in review.record.many("allergies"):
        if allergy.get("resourceType") != "AllergyIntolerance" or not recorded(allergy):
            continue
        match = review.kb.allergy(allergy.get("code"), order.drug)
        if match is None:
            continue
        severity = match.severity
        if severity == "critical" and "unconfirmed" in _codes(allergy.get("verificationStatus")):
            severity = "warning"
        allergen = (allergy.get("code") or {}).get("text") or next(
            (c.get("display") or c.get("code") for c in (allergy.get("code") or {}).get("coding", [])), "过敏原")
        what = {"same-drug": "对该药过敏", "same-class": f"对{match.allergy_class}过敏",
                "cross-reactive": f"对{match.allergy_class}过敏，可能交叉过敏"}[match.reason]
        reactions = [m.get("text") or next((c.get("display") for c in m.get("coding", []) if c.get("display")), "")
                     for r in allergy.get("reaction", []) for m in r.get("manifestation", [])]
        detail = [f"**{order.label}**: the patient has a recorded allergy to **{allergen}** ({match.reason}).",
                  "", match.detail]
        if any(reactions):
            detail += ["", f"Recorded reactions: {', '.join(r for r in reactions if r)}."]
        findings.append(Finding(
            "allergy", f"allergy:{order.drug.key}:{allergy.get('id') or allergen}", severity,
            f"药物过敏：{order.drug.zh or order.drug.key}，患者{what}（{allergen}）", "\n".join(detail), match.source,
            order.request, [r for r in [reference_to(allergy)] if r], suggest.present(suggest.remove(order)),
            "MedicationRequest.medication"))
    return findings
