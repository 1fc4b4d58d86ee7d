"""What a check finds, and the vocabulary of checks shared by cards, DetectedIssues and supervision."""
from __future__ import annotations

from dataclasses import dataclass, field

from ihs.cds.kb import Source

IHS = "https://ihs.example.org/fhir"
CHECK_SYSTEM = f"{IHS}/CodeSystem/prescription-check"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@dataclass(frozen=True)
class Check:
    code: str
    display: str
    zh: str
    v3: tuple[str, str] | None  # the HL7 v3 ActCode detected-issue code that fits, if one does


CHECKS = {c.code: c for c in [
    Check("ddi", "Drug-drug interaction", "药物相互作用", ("DRG", "Drug Interaction Alert")),
    Check("allergy", "Drug allergy", "药物过敏", ("ALGY", "Allergy Alert")),
    Check("dose", "Dose above the maximum", "超剂量", ("DOSEH", "High Dose Alert")),
    Check("renal", "Dose above the renal limit", "肾功能剂量限制", ("DOSECOND", "dosage-condition alert")),
    Check("duplicate", "Duplicate therapy", "重复用药", ("DUPTHPCLS", "duplicate therapeutic alass alert")),
    Check("indication", "No indication on record (药不对症)", "药不对症", None),
    Check("completeness", "Incomplete prescription", "处方不完整", ("VALIDAT", "validation issue")),
    Check("prescriber", "Prescriber not authorised", "处方医师资质", ("VALIDAT", "validation issue")),
    Check("supply", "Supply longer than allowed", "处方用量超限", ("DOSEDURH", "Dose-Duration High Alert")),
    Check("validity", "Prescription not valid for dispensing", "处方失效", ("VALIDAT", "validation issue")),
    Check("no-prescription", "Dispensing without a valid prescription (无方购药)", "无方购药", ("VALIDAT", "validation issue")),
]}


@dataclass
class Finding:
    """One problem a check found with one order (or with the patient's current medicines)."""

    check: str  # a key of CHECKS
    key: str  # stable within the order: the same problem found twice has the same key
    severity: str  # info | warning | critical
    summary: str  # one sentence, under 140 characters
    detail: str  # GitHub-flavoured Markdown
    source: Source
    order: dict | None = None  # the MedicationRequest concerned
    implicated: list[dict] = field(default_factory=list)  # References of the other resources involved
    suggestions: list[dict] = field(default_factory=list)  # CDS Hooks suggestions (without uuids)
    expression: str | None = None  # FHIRPath of the element at fault, for OperationOutcomes

    def __post_init__(self):
        if len(self.summary) >= 140:
            self.summary = self.summary[:138] + "…"

    @property
    def topic(self) -> dict:
        check = CHECKS[self.check]
        return {"system": CHECK_SYSTEM, "code": check.code, "display": check.display}


def reference_to(resource: dict | None) -> dict | None:
    """A Reference to a stored resource, or None when it has no id."""
    if resource and resource.get("id"):
        return {"reference": f"{resource['resourceType']}/{resource['id']}"}
    return None
