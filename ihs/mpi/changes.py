"""Outbox handlers: incremental matching on every Patient change, and stewards' review decisions.

Handlers take `(store, event)` with event.res_type, .res_id, .version and .interaction; events
are delivered at least once, and handling one twice writes nothing the second time.
"""
from __future__ import annotations

from ihs.mpi import linking, review
from ihs.mpi.index import forget, index_for
from ihs.store.store import Store


# Patients linked per unit of work: large enough to share its reads and commit, small enough that
# API writers never wait long for the database's write lock (SQLite) behind a dispatcher round
BATCH = 100


def on_patient_change(store: Store, event) -> linking.Decision | None:
    """Match the changed Patient and set its golden record and links."""
    decisions = on_patient_changes(store, [event])
    return decisions[0] if decisions else None


def on_patient_changes(store: Store, events) -> list[linking.Decision]:
    """Match a batch of changed Patients, `BATCH` per unit of work; one decision per Patient.

    A version the index wrote itself (a link, a golden record) is not matched again: only its
    links changed since its content was matched."""
    index = index_for(store)
    ids = list(dict.fromkeys(e.res_id for e in events if e.res_type == "Patient"
                             and not index.wrote(e.res_id, getattr(e, "version", None))))
    decisions = []
    try:
        for start in range(0, len(ids), BATCH):
            with index.lock, store.session(write=True) as uow:
                linker = linking.Linker(uow, index)
                decisions += [linker.link(record_id) for record_id in ids[start:start + BATCH]]
                linker.finish()
        return decisions
    except Exception:
        forget(store)  # the index may hold writes that were rolled back: load it again next time
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
            linker = linking.Linker(uow, index)
            golden_id = None
            if task.get("status") == "completed" and record and candidate:
                golden_id = linker.confirm(record, candidate)
            elif task.get("status") == "rejected" and record:
                linker.link(record)
            linker.finish()
            return golden_id
    except Exception:
        forget(store)
        raise


def subscribe_all(subscribe) -> None:
    """Register the handlers with the event bus (`ihs.events.subscribe`)."""
    subscribe(on_patient_changes, types={"Patient"}, batch=True)
    subscribe(on_task_change, types={"Task"})
