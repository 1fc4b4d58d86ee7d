"""Indication mismatch (药不对症): no active Condition, nor reason on the order, that the drug treats.

An antibacterial without an infection it treats is critical: the Administrative Measures for the
Clinical Use of Antibacterial Drugs (抗菌药物临床应用管理办法, 2012) allow them only on an indication.
"""
from __future__ import annotations

from ihs.cds import suggest
from ihs.cds.findings import Finding
from ihs.cds.kb import Source
from ihs.cds.review import is_active_condition

ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm",
                 "http://hl7.org/fhir/sid/icd-10-cn")
STEWARDSHIP = Source("抗菌药物临床应用管理办法 (Administrative Measures for the Clinical Use of Antibacterial Drugs, 2012)")
FORMULARY = Source("IHS formulary indications (product labels, coded to WHO ICD-10)")


def _icd10(concept: dict | None) -> list[str]:
    return [c["code"].upper() for c in (concept or {}).get("coding", [])
            if c.get("system", "").startswith(ICD10_SYSTEMS) and c.get("code")]


def diagnoses(review) -> list[str]:
    """ICD-10 codes of the patient's active conditions and of the order's own reasons."""
    codes = []
    for condition in review.record.many("conditions"):
        if condition.get("resourceType") == "Condition" and is_active_condition(condition, review.now):
            codes += _icd10(condition.get("code"))
    request = review.order.request
    for reason in request.get("reasonCode", []):
        codes += _icd10(reason)
    for reference in request.get("reasonReference", []):
        codes += _icd10((review.record.resolve(reference) or {}).get("code"))
    return codes


def check(review) -> list[Finding]:
    order, drug = review.order, review.order.drug
    if drug is None or drug.formulary is None or not drug.formulary.indications:
        return []
    prefixes = [p.replace(".", "").upper() for p in drug.formulary.indications]
    codes = diagnoses(review)
    if any(code.replace(".", "").startswith(prefix) for code in codes for prefix in prefixes):
        return []
    severity = "critical" if drug.antibacterial else "warning"
    on_record = ", ".join(sorted(set(codes))) or "none"
    return [Finding(
        "indication", f"indication:{drug.key}", severity,
        f"药不对症：{drug.zh or drug.key} 无相应诊断" + ("（抗菌药物须有感染指征）" if drug.antibacterial else ""),
        f"**{order.label}** treats {', '.join(drug.formulary.indications)} (ICD-10); the patient's active "
        f"diagnoses are: {on_record}. Record the diagnosis the drug is for, or reconsider it.",
        STEWARDSHIP if drug.antibacterial else FORMULARY, order.request, [],
        suggest.present(suggest.remove(order)), "MedicationRequest.reasonCode")]
