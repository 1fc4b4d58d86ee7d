"""DetectedIssue: every card shown and every decision taken on it, stored for supervision.

A card's DetectedIssue has the card's uuid as its id, so feedback and overrides find it, and a
card shown again (the same problem with the same order) is stored once. Its status is
`preliminary` while nobody has acted on it and `final` once the card was accepted or overridden;
each decision is a `mitigation` whose action carries the override reason (HL7 v3 ActCode
detected-issue management codes) and an IHS code saying accepted or overridden.
"""
from __future__ import annotations

from datetime import datetime

from ihs.cds.findings import CHECK_SYSTEM, CHECKS, IHS, V3_ACT_CODE, Finding
from ihs.fhir.validation import validate

SD = f"{IHS}/StructureDefinition"
EXT_SERVICE = f"{SD}/cds-service"
EXT_HOOK = f"{SD}/cds-hook"
EXT_PRESCRIBER = f"{SD}/prescriber"
EXT_FACILITY = f"{SD}/facility"
FEEDBACK_SYSTEM = f"{IHS}/CodeSystem/cds-feedback"
SEVERITY = {"critical": "high", "warning": "moderate", "info": "low"}
INDICATOR = {v: k for k, v in SEVERITY.items()}
AUTHOR = {"display": "IHS prescription safety service"}


def fhir_instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def detected_issue(card: dict, finding: Finding, *, patient: str, service: str, hook: str, prescriber: str | None,
                   facility: str | None, now: datetime) -> dict:
    """The DetectedIssue recording that `card` was shown."""
    check = CHECKS[finding.check]
    codings = [{"system": V3_ACT_CODE, "code": check.v3[0], "display": check.v3[1]}] if check.v3 else []
    codings.append({"system": CHECK_SYSTEM, "code": check.code, "display": check.display})
    implicated = []
    if finding.order is not None:
        order_ref = f"MedicationRequest/{finding.order['id']}" if finding.order.get("id") else None
        implicated.append({"reference": order_ref} if order_ref else {"display": "draft MedicationRequest"})
    implicated += finding.implicated
    extension = [{"url": EXT_SERVICE, "valueString": service}, {"url": EXT_HOOK, "valueString": hook}]
    if prescriber:
        extension.append({"url": EXT_PRESCRIBER, "valueReference": {"reference": prescriber}})
    if facility:
        extension.append({"url": EXT_FACILITY, "valueReference": {"reference": facility}})
    issue = {
        "resourceType": "DetectedIssue", "id": card["uuid"], "extension": extension,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{card['uuid']}"}],
        "status": "preliminary",
        "code": {"coding": codings, "text": card["summary"]},
        "severity": SEVERITY[card["indicator"]],
        "patient": {"reference": patient},
        "identifiedDateTime": fhir_instant(now),
        "author": AUTHOR,
        "detail": card.get("detail") or card["summary"],
    }
    if implicated:
        issue["implicated"] = implicated
    if finding.source.url:
        issue["reference"] = finding.source.url
    return issue


def record_shown(uow, issues: list[dict]) -> None:
    """Store the DetectedIssues of cards shown; one already stored (the same card again) is kept as it is."""
    for issue in issues:
        if uow.current("DetectedIssue", issue["id"]) is None:
            validate(issue)
            uow.create(issue, method="PUT")


def record_decision(uow, card_id: str, outcome: str, *, when: datetime, reason: dict | None = None,
                    comment: str | None = None, author: str | None = None, service: str | None = None) -> dict | None:
    """Add a clinician's decision on a card (accepted | overridden) to its DetectedIssue; None if unknown.

    The same decision reported twice (feedback is delivered at least once) is stored once.
    """
    stored = uow.current("DetectedIssue", card_id)
    if stored is None or stored.deleted:
        return None
    issue = stored.resource()
    if service and extension(issue, EXT_SERVICE) not in (None, service):
        return None
    codings = [{"system": FEEDBACK_SYSTEM, "code": outcome, "display": outcome.capitalize()}]
    if reason and reason.get("code") and reason.get("system"):
        codings.insert(0, {k: reason[k] for k in ("system", "code", "display") if reason.get(k)})
    action = {"coding": codings}
    if comment:
        action["text"] = comment
    mitigation = {"action": action, "date": fhir_instant(when)}
    if author and author.split("/")[0] in ("Practitioner", "PractitionerRole"):
        mitigation["author"] = {"reference": author}
    if mitigation in issue.get("mitigation", []):
        return issue
    issue.setdefault("mitigation", []).append(mitigation)
    issue["status"] = "final"
    validate(issue)
    uow.update(issue, stored)
    return issue


def extension(issue: dict, url: str):
    """The value of one of the IHS extensions on a DetectedIssue."""
    for ext in issue.get("extension", []):
        if ext.get("url") == url:
            return ext.get("valueString") or (ext.get("valueReference") or {}).get("reference")
    return None


def decided(issue: dict, outcome: str) -> bool:
    """Whether the issue was `outcome` (accepted | overridden) by a clinician."""
    return any(c.get("system") == FEEDBACK_SYSTEM and c.get("code") == outcome
               for m in issue.get("mitigation", []) for c in (m.get("action") or {}).get("coding", []))
