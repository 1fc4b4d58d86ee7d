"""Signing a prescription: a draft MedicationRequest becomes active only past the safety checks.

`sign()` reviews the draft with the order-sign CDS service, stores a DetectedIssue for every card,
records the overrides given, and activates the order when no critical card is left standing. It
returns instead of raising when blocked, so the cards shown are committed with the unit of work;
the caller raises the `Blocked` error afterwards.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ihs.cds import gate, service
from ihs.cds.issues import fhir_instant
from ihs.cds.medication import LOCAL
from ihs.cds.record import StoreFetcher
from ihs.fhir.errors import BusinessRule, Conflict, NotFound
from ihs.fhir.validation import validate


@dataclass
class Signing:
    """What signing did: the signed order, or the alerts that blocked it."""

    result: service.Result
    signed: dict | None = None
    blocked: gate.Blocked | None = None


def _patient_id(order: dict) -> str:
    ref = (order.get("subject") or {}).get("reference") or ""
    if not ref.startswith("Patient/"):
        raise BusinessRule("a prescription's subject must reference the Patient it is for", "MedicationRequest.subject")
    return ref.removeprefix("Patient/")


def sign(uow, order_id: str, *, overrides: list[gate.Override] = (), user: str | None = None,
         now: datetime | None = None) -> Signing:
    """Sign the draft MedicationRequest `order_id` unless a critical card blocks it."""
    stored = uow.current("MedicationRequest", order_id)
    if stored is None or stored.deleted:
        raise NotFound(f"MedicationRequest/{order_id} does not exist")
    draft = stored.resource()
    if draft.get("status") != "draft":
        raise Conflict(f"MedicationRequest/{order_id} is {draft.get('status')}; only a draft can be signed")
    now = now or datetime.now(LOCAL)
    user = user or (draft.get("requester") or {}).get("reference") or "unknown"
    body = {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": user, "patientId": _patient_id(draft),
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}}}
    if draft.get("encounter", {}).get("reference", "").startswith("Encounter/"):
        body["context"]["encounterId"] = draft["encounter"]["reference"].removeprefix("Encounter/")
    result = service.run(uow, service.service("prescription-safety", "order-sign"), body,
                         fetcher=StoreFetcher(uow), scope=f"MedicationRequest/{order_id}/sign", now=now)
    overrides = list(overrides)
    gate.record_overrides(uow, result, overrides, author=user, when=now)
    if gate.blocking(result, overrides):
        return Signing(result, blocked=gate.Blocked("signing", result, overrides))
    signed = dict(draft, status="active")
    signed.setdefault("authoredOn", fhir_instant(now))
    if result.cards:
        signed["detectedIssue"] = [{"reference": f"DetectedIssue/{c['uuid']}"} for c in result.cards]
    validate(signed)
    uow.update(signed, stored)
    return Signing(result, signed=signed)
