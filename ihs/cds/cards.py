"""Findings as CDS Hooks 2.0 cards (https://cds-hooks.hl7.org/2.0/#card-attributes).

Every card has a uuid (for feedback and its DetectedIssue), a summary under 140 characters, an
indicator, a source with a topic naming the check; suggestions come with a selectionBehavior;
warning and critical cards offer override reasons, each with a display. Optional attributes without
a value are left out, never sent empty.
"""
from __future__ import annotations

import uuid

from ihs.cds.findings import V3_ACT_CODE, Finding

NAMESPACE = uuid.UUID("5b0e7a52-58c1-4f1e-9a53-2a1f3f3f6c1d")  # IHS prescription-safety cards

# the HL7 detected-issue mitigation codes a clinician may give for going ahead anyway
OVERRIDE_REASONS = [
    {"system": V3_ACT_CODE, "code": "1", "display": "Therapy Appropriate"},
    {"system": V3_ACT_CODE, "code": "22", "display": "appropriate indication or diagnosis"},
    {"system": V3_ACT_CODE, "code": "9", "display": "Instituted Ongoing Monitoring Program"},
    {"system": V3_ACT_CODE, "code": "2", "display": "Assessed Patient"},
    {"system": V3_ACT_CODE, "code": "EMAUTH", "display": "emergency authorization override"},
]
PHARMACIST_REASONS = OVERRIDE_REASONS + [{"system": V3_ACT_CODE, "code": "5", "display": "Consulted Prescriber"}]


def card_uuid(scope: str, key: str) -> str:
    """The uuid of the card for finding `key` in `scope` (a hook instance, or a stored order's version)."""
    return str(uuid.uuid5(NAMESPACE, f"{scope}|{key}"))


def card(finding: Finding, card_id: str, *, pharmacist: bool = False) -> dict:
    """The CDS Hooks card for a finding."""
    source = {"label": finding.source.label, "topic": finding.topic}
    if finding.source.url:
        source["url"] = finding.source.url
    result = {"uuid": card_id, "summary": finding.summary, "indicator": finding.severity, "source": source}
    if finding.detail:
        result["detail"] = finding.detail
    if finding.suggestions:
        result["suggestions"] = [dict(s, uuid=str(uuid.uuid5(NAMESPACE, f"{card_id}|{index}")))
                                 for index, s in enumerate(finding.suggestions)]
        result["selectionBehavior"] = "at-most-one"
    if finding.severity != "info":
        result["overrideReasons"] = PHARMACIST_REASONS if pharmacist else OVERRIDE_REASONS
    return result
