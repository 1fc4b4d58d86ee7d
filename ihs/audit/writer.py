"""Group commit of AuditEvents for requests that change nothing (reads, searches, exports).

A read has no transaction of its own to carry its AuditEvent, yet the event must be stored before
the response is sent. Committing one transaction per read costs a disk flush each (SQLite with
synchronous=FULL manages ~150 a second); `AuditWriter.write(event)` instead lets concurrent
requests share one: the first caller waits `max_wait` seconds for others to join, appends the whole
batch to the chain in one write transaction, and every caller returns once its event is committed.
Changes (create, update, delete) record their event with `ihs.audit.record` in their own unit of work.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from ihs.audit.chain import record_many

log = logging.getLogger("ihs.audit")


@dataclass
class _Ticket:
    event: dict
    checked: bool
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class AuditWriter:
    """Writes AuditEvents to `store` in shared transactions; `write` blocks until the event is committed."""

    def __init__(self, store, *, max_wait: float = 0.002, max_batch: int = 500):
        self.store = store
        self.max_wait = max_wait
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Ticket] = []
        self._leading = False

    def write(self, event: dict, *, checked: bool = False) -> None:
        """Store `event` on the chain; returns once it is committed (raises what the commit raised).

        `checked=True`: the event comes from `audit_event` and needs no validation (see `record`).
        """
        ticket = _Ticket(event, checked)
        if self._enqueue(ticket):
            self._lead()
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error

    def submit(self, event: dict, *, checked: bool = False) -> None:
        """Queue `event` and return at once; a background thread commits the queue within `max_wait`.

        For the API's reads: the response does not wait for the disk. A crash of the process can
        lose the events queued in that last instant (see docs/security.md); `flush()` on shutdown.
        """
        if self._enqueue(_Ticket(event, checked)):
            threading.Thread(target=self._lead, name="audit-writer", daemon=True).start()

    def flush(self, timeout: float = 10) -> None:
        """Wait until every queued event is committed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending and not self._leading:
                    return
            time.sleep(self.max_wait)

    def _enqueue(self, ticket: _Ticket) -> bool:
        """Queue `ticket`; True when the caller must lead the next commit (nobody is leading)."""
        with self._lock:
            self._pending.append(ticket)
            lead = not self._leading
            self._leading = True
        return lead

    def _lead(self) -> None:
        time.sleep(self.max_wait)  # let concurrent requests join this transaction
        while True:
            with self._lock:
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                if not batch:
                    self._leading = False
                    return
            try:
                # Read audits need not wait for the disk: a crash of the process loses none of them.
                with self.store.session(write=True, synced=False) as uow:
                    for checked in (True, False):
                        record_many(uow, [t.event for t in batch if t.checked is checked], checked=checked)
            except BaseException as exc:  # every waiting request learns its event was not stored
                log.exception("audit events could not be stored", extra={"fields": {"events": len(batch)}})
                for ticket in batch:
                    ticket.error = exc
            for ticket in batch:
                ticket.done.set()
