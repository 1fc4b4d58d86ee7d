"""The outbox handler: keep the syndromic counts and the case reports in step with the records.

`on_change(store, event)` is subscribed for Encounter, Condition and Patient changes. It reads the
records as they are now (never the event's payload), so a change delivered twice, or late, or out
of order, leaves the same counts.
"""
from __future__ import annotations

from ihs.store import search
from ihs.surveillance import casereport, counts

TYPES = {"Encounter", "Condition", "Patient"}


def on_change(store, event) -> None:
    """React to one committed change (event: .res_type, .res_id, .version, .interaction)."""
    if event.res_type == "Encounter":
        counts.refresh(store, event.res_id)
    elif event.res_type == "Condition":
        for encounter_id in _encounters_of_condition(store, event):
            counts.refresh(store, encounter_id)
        if event.interaction != "delete":
            casereport.report_if_notifiable(store, event.res_id)
    elif event.res_type == "Patient":
        for encounter_id in _encounters_of_patient(store, event.res_id):
            counts.refresh(store, encounter_id)


def _encounters_of_condition(store, event) -> set[str]:
    """The encounters the Condition points at now and in the version before (a move or delete)."""
    found = set()
    with store.session() as uow:
        versions = [uow.current("Condition", event.res_id)]
        if event.version and event.version > 1:
            versions.append(uow.version("Condition", event.res_id, event.version - 1))
        for stored in versions:
            if stored is None or stored.deleted or stored.content is None:
                continue
            reference = (stored.resource().get("encounter") or {}).get("reference") or ""
            if reference.startswith("Encounter/"):
                found.add(reference.split("/")[1])
        for stored in search.find(uow, "Encounter", [("diagnosis", f"Condition/{event.res_id}")], limit=1000):
            found.add(stored.id)
    return found


def _encounters_of_patient(store, patient_id: str) -> list[str]:
    with store.session() as uow:
        return [s.id for s in search.find(uow, "Encounter", [("subject", f"Patient/{patient_id}")], limit=10000)]
