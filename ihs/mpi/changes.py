"""Outbox handlers: incremental matching on every Patient change, and stewards' review decisions.

Handlers take `(store, event)` with event.res_type, .res_id, .version and .interaction, or
`(store, events)` for a dispatcher round (`subscribe_all` registers these); events are delivered at
least once, and handling one twice writes nothing the second time.
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
                linker.read(ids[start:start + BATCH])
                decisions += [linker.link(record_id) for record_id in ids[start:start + BATCH]]
                linker.finish()
        return decisions
    except Exception:
        forget(store)  # the index may hold writes that were rolled back: load it again next time
        raise


def on_task_change(store: Store, event) -> str | None:
    """Apply a steward's answer to a review Task: completed links the pair by hand, rejected keeps it apart."""
    answers = on_task_changes(store, [event])
    return answers[0] if answers else None


def on_task_changes(store: Store, events) -> list[str | None]:
    """Apply the stewards' answers among changed Tasks in one unit of work; for each answered review
    Task, the golden id the record was linked to by hand (None for a rejection).

    A review Task still open (linking has just opened it) needs nothing, not even the index's sync."""
    ids = list(dict.fromkeys(e.res_id for e in events if e.res_type == "Task"))
    if not ids:
        return []
    index = index_for(store)
    try:
        with index.lock, store.session(write=True) as uow:
            found = uow.currents("Task", ids)
            answered = [task for task in (found[i].resource() for i in ids if i in found and not found[i].deleted)
                        if _is_review(task) and task.get("status") in ("completed", "rejected")]
            if not answered:
                return []
            index.sync(uow)
            linker = linking.Linker(uow, index)
            answers = []
            for task in answered:
                record, candidate = review.record_of(task), review.candidate_of(task)
                golden_id = None
                if task["status"] == "completed" and record and candidate:
                    golden_id = linker.confirm(record, candidate)
                elif task["status"] == "rejected" and record:
                    linker.link(record)
                answers.append(golden_id)
            linker.finish()
            return answers
    except Exception:
        forget(store)
        raise


def _is_review(task: dict) -> bool:
    return review.REVIEW["code"] in {c.get("code") for c in (task.get("code") or {}).get("coding", [])}


def subscribe_all(subscribe) -> None:
    """Register the handlers with the event bus (`ihs.events.subscribe`)."""
    subscribe(on_patient_changes, types={"Patient"}, batch=True)
    subscribe(on_task_changes, types={"Task"}, batch=True)
