"""The safety gate of signing and dispensing: critical cards block unless overridden with a reason.

An override names the card (its uuid, stable for the same problem with the same order) and gives
a reason: a coding from the card's overrideReasons, or a comment. A blocked request answers 422
with an OperationOutcome holding one issue per card, each carrying the card itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from ihs.cds import issues
from ihs.cds.findings import CHECK_SYSTEM
from ihs.cds.issues import SD
from ihs.fhir.errors import FhirError, Issue

CARD_EXTENSION = f"{SD}/cds-hooks-card"
ISSUE_SEVERITY = {"critical": "error", "warning": "warning", "info": "information"}


@dataclass(frozen=True)
class Override:
    card: str  # the card's uuid
    reason: dict | None = None  # Coding
    comment: str | None = None

    @property
    def justified(self) -> bool:
        return bool((self.reason or {}).get("code") or (self.comment or "").strip())


def overrides_from(parameters: dict | None) -> list[Override]:
    """Overrides from a Parameters resource: repeating `override` with parts card, reason, comment."""
    found = []
    for parameter in (parameters or {}).get("parameter", []):
        if parameter.get("name") != "override":
            continue
        parts = {p.get("name"): p for p in parameter.get("part", [])}
        card = (parts.get("card") or {}).get("valueString") or (parts.get("card") or {}).get("valueId")
        if not card:
            raise FhirError("each 'override' needs a 'card' part: the uuid of the card overridden",
                            expression="Parameters.parameter.part")
        found.append(Override(card, (parts.get("reason") or {}).get("valueCoding"),
                              (parts.get("comment") or {}).get("valueString")))
    return found


def blocking(result, overrides: list[Override]) -> list:
    """The (card, finding) pairs still blocking: critical and not overridden with a reason."""
    return result.blocking({o.card for o in overrides if o.justified})


def record_overrides(uow, result, overrides: list[Override], *, author: str | None, when: datetime) -> None:
    """Store each override of a card this call showed as a decision on its DetectedIssue."""
    shown = {c["uuid"] for c in result.cards}
    for override in overrides:
        if override.card in shown and override.justified:
            issues.record_decision(uow, override.card, "overridden", when=when, reason=override.reason,
                                   comment=override.comment, author=author)


class Blocked(FhirError):
    """The request stopped at the safety gate (422); the OperationOutcome carries every card."""

    def __init__(self, action: str, result, overrides: list[Override]):
        self.result = result
        self.blocked = blocking(result, overrides)
        unjustified = [o.card for o in overrides if not o.justified]
        message = (f"{action} blocked by {len(self.blocked)} critical alert(s); review them and resend with an "
                   "'override' (card uuid and reason) for each, or change the order")
        if unjustified:
            message += f"; overrides without a reason do not count ({', '.join(unjustified)})"
        super().__init__(message, 422, code="business-rule")

    def outcome(self) -> dict:
        blocked = {c["uuid"] for c, _ in self.blocked}
        found = [Issue(self.issues[0].diagnostics, code="business-rule").to_fhir()]
        for card, finding in zip(self.result.cards, self.result.findings):
            severity = "error" if card["uuid"] in blocked else ISSUE_SEVERITY[card["indicator"]].replace("error", "warning")
            issue = {
                "extension": [{"url": CARD_EXTENSION, "valueString": orjson.dumps(card).decode()}],
                "severity": severity, "code": "business-rule",
                "details": {"coding": [{"system": CHECK_SYSTEM, "code": finding.check},
                                       {"system": "urn:ietf:rfc:3986", "code": f"urn:uuid:{card['uuid']}"}],
                            "text": card["summary"]},
                "diagnostics": card.get("detail", card["summary"]),
            }
            if finding.expression:
                issue["expression"] = [finding.expression]
            found.append(issue)
        return {"resourceType": "OperationOutcome", "issue": found}
