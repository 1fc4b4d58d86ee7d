"""Break-the-glass: emergency access to a patient's record outside the usual rules.

A clinician claims it with a reason, either per request in the `X-Break-Glass: <reason>` header or
for a whole token with the `break_glass` parameter of the authorization request. When the policy
allows an access only because of that claim (`Decision.break_glass`), or a search's restriction
shows a patient's records only through it (`policy.break_glass_patients`, for the patients the
query names: `patients_in_query`), the API calls `record_use(uow, principal, patient, config)` in
a write unit of work: the first use for a patient opens a grant lasting `IHS_BREAK_GLASS_MINUTES`
(later requests within it need no claim), and sends a Communication to the patient and one to the
privacy officer. Every access under a claim or grant is audited with purpose of use BTG (ihs/audit).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import insert, select

from ihs.auth.config import PolicyConfig
from ihs.auth.principal import Principal
from ihs.auth.schema import break_glass as grants
from ihs.fhir.validation import validate

HEADER = "X-Break-Glass"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CATEGORY = "https://ihs.example.org/fhir/CodeSystem/communication-category"


@dataclass(frozen=True)
class Grant:
    id: str
    subject: str
    patient: str
    reason: str
    granted_at: int
    expires_at: int


def _grant(row) -> Grant:
    return Grant(row.id, row.subject, row.patient, row.reason, row.granted_at, row.expires_at)


def active_grants(conn, subject: str, now: int | None = None) -> list[Grant]:
    """The unexpired emergency-access grants of an account."""
    now = now or int(time.time())
    rows = conn.execute(select(grants).where(grants.c.subject == subject, grants.c.expires_at > now)).all()
    return [_grant(r) for r in rows]


def granted_patients(conn, subject: str) -> frozenset[str]:
    return frozenset(g.patient for g in active_grants(conn, subject))


def record_use(uow, principal: Principal, patient: str, config: PolicyConfig | None = None) -> Grant:
    """Open (or find) the grant for `principal` on Patient/`patient` and notify on opening.

    Needs a write unit of work; the Communications commit with the access's AuditEvent.
    """
    config = config or PolicyConfig()
    now = int(time.time())
    for grant in active_grants(uow.conn, principal.subject, now):
        if grant.patient == patient:
            return grant
    reason = principal.break_glass.reason if principal.break_glass else "emergency access"
    grant = Grant(str(uuid.uuid4()), principal.subject, patient, reason, now, now + config.break_glass_minutes * 60)
    uow.conn.execute(insert(grants).values(id=grant.id, subject=grant.subject, fhir_user=principal.fhir_user,
                                           patient=patient, reason=reason, granted_at=now,
                                           expires_at=grant.expires_at))
    recipients = [f"Patient/{patient}"] + ([config.privacy_officer] if config.privacy_officer else [])
    for recipient in recipients:
        communication = notification(principal, patient, grant, recipient)
        validate(communication)
        uow.create(communication)
    return grant


def _instant(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def notification(principal: Principal, patient: str, grant: Grant, recipient: str) -> dict:
    """The Communication telling `recipient` about an emergency access to Patient/`patient`."""
    who = principal.fhir_user or principal.subject
    text = (f"紧急授权访问 / Emergency access to the health record of Patient/{patient} by {who} "
            f"from {_instant(grant.granted_at)} until {_instant(grant.expires_at)}. Reason: {grant.reason}")
    communication = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": CATEGORY, "code": "break-glass", "display": "Emergency access notice"}]}],
        "priority": "urgent",
        "subject": {"reference": f"Patient/{patient}"},
        "topic": {"coding": [{"system": ACT_REASON, "code": "BTG", "display": "break the glass"}]},
        "sent": _instant(grant.granted_at),
        "recipient": [{"reference": recipient}],
        "reasonCode": [{"text": grant.reason}],
        "payload": [{"contentString": text}],
    }
    if principal.fhir_user:
        communication["sender"] = {"reference": principal.fhir_user}
    return communication


# search parameters that name the patient whose records a search is about
PATIENT_PARAMS = ("patient", "subject", "beneficiary", "for")


def patients_in_query(resource_type: str | None, query: list[tuple[str, str]],
                      compartment: tuple[str, str] | None = None) -> tuple[str, ...]:
    """Patient ids a search names (`patient=`, `subject=Patient/x`, `Patient?_id=`, `Patient/x/...`):
    what a break-the-glass claim opens (`search_restriction(..., patients=...)`) and the patients a
    search can reach through an emergency grant."""
    found = []
    if compartment and compartment[0] == "Patient":
        found.append(compartment[1])
    for name, value in query:
        base = name.split(":")[0].split(".")[0]
        if resource_type == "Patient" and base == "_id":
            found += value.split(",")
        elif base in PATIENT_PARAMS:
            for item in value.split(","):
                kind, _, ident = item.rpartition("/")
                if kind.split("/")[-1] in ("", "Patient"):
                    found.append(ident)
    return tuple(dict.fromkeys(p for p in found if p))
