"""Outbox handlers: incremental matching on every Patient change, and stewards' review decisions.

Handlers take `(store, event)` with event.res_type, .res_id, .version and .interaction; events
are delivered at least once, and handling one twice writes nothing the second time.
"""
from __future__ import annotations

from ihs.mpi import linking, review
from ihs.mpi.index import forget, index_for
from ihs.store.store import Store


def on_patient_change(store: Store, event) -> linking.Decision | None:
    """Match the changed Patient and set its golden record and links."""
    if event.res_type != "Patient":
        return None
    index = index_for(store)
    try:
        with index.lock, store.session(write=True) as uow:
            return linking.link_record(uow, index, event.res_id)
    except Exception:
        forget(store)  # the index may hold writes that were rolled back: load it again next time
        raise


def on_patient_changes(store: Store, events) -> list[linking.Decision]:
    """Match a batch of changed Patients in one transaction (a dispatcher that batches saves a commit each)."""
    ids = list(dict.fromkeys(e.res_id for e in events if e.res_type == "Patient"))
    if not ids:
        return []
    index = index_for(store)
    try:
        with index.lock, store.session(write=True) as uow:
            return [linking.link_record(uow, index, record_id) for record_id in ids]
    except Exception:
        forget(store)
        raise


def on_task_change(store: Store, event) -> str | None:
    """Apply a steward's answer to a review Task: completed links the pair by hand, rejected keeps it apart."""
    if event.res_type != "Task":
        return None
    index = index_for(store)
    try:
        with index.lock, store.session(write=True) as uow:
            stored = uow.current("Task", event.res_id)
            if stored is None or stored.deleted:
                return None
            task = stored.resource()
            codes = {c.get("code") for c in (task.get("code") or {}).get("coding", [])}
            if review.REVIEW["code"] not in codes:
                return None
            index.sync(uow)
            record, candidate = review.record_of(task), review.candidate_of(task)
            if task.get("status") == "completed" and record and candidate:
                return linking.confirm(uow, index, record, candidate)
            if task.get("status") == "rejected" and record:
                linking.link_record(uow, index, record)
            return None
    except Exception:
        forget(store)
        raise


def subscribe_all(subscribe) -> None:
    """Register the handlers with the event bus (`ihs.events.subscribe`)."""
    subscribe(on_patient_change, types={"Patient"})
    subscribe(on_task_change, types={"Task"})
