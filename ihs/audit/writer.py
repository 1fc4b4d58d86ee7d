"""Group commit of AuditEvents for requests that change nothing (reads, searches, refusals, exports).

A read has no transaction of its own to carry its AuditEvent, yet the event must be stored before
the response is sent. `writer.write(event)` runs on the request's own worker thread, right after
the read: the first caller to find no commit running becomes the leader, takes everything queued,
appends it to the process's own journal with one write (ihs/audit/journal.py: an append-only file
no other process writes, so the append waits on no other worker, on no change and on no database)
and settles every ticket in the batch; callers that arrived meanwhile wait, and one of them leads
the next append. Batches grow with the load without any timer or extra thread hop, which matters
when each append waits for the disk. A filer (ihs/audit/filer.py: this writer's own, or the
supervising process's under several workers) then puts the journal's events on the chain and
stores them as indexed AuditEvent resources, many per transaction, shortly after the responses; it
runs only on CPU time the requests leave idle, so under a burst of reads the filing falls behind
rather than the reads, up to `MAX_BACKLOG` events per process, after which reads wait for it.

How durable the journal's append is before the request goes on (`IHS_READ_AUDIT_DURABILITY`):

- `commit` (default): written to the journal file without waiting for the disk: the events
  survive a crash of any IHS process; an operating-system crash or power loss can lose those of
  the last moments.
- `flush`: each shared append also waits for the disk flush (`fdatasync`), as a change does, and
  so does filing: nothing is lost even on power loss, and every read waits one flush.

Filing on PostgreSQL always commits synchronously: a journal's rows count as filed only once the
database holds them.

Changes (create, update, delete) record their event with `ihs.audit.record` in their own unit of
work instead: it commits with the change.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from ihs.audit.chain import ensure_audit_schema
from ihs.audit.filer import JournalFiler, supervised
from ihs.audit.journal import ROTATE_BYTES, Journal, directory_of, forget
from ihs.fhir.validation import validate

log = logging.getLogger("ihs.audit")

DURABILITY = "IHS_READ_AUDIT_DURABILITY"
LEVELS = ("commit", "flush")
MAX_BACKLOG = 50_000  # journaled events not filed yet, per process, before reads wait for the filer


def durability_from_env() -> str:
    level = os.environ.get(DURABILITY, "commit")
    if level not in LEVELS:
        raise ValueError(f"{DURABILITY} is 'commit' or 'flush', not {level!r}")
    return level


@dataclass
class _Ticket:
    event: dict
    settled: bool = False
    error: BaseException | None = None


class AuditWriter:
    """Journals AuditEvents in shared transactions (every caller waits for its commit) and files them.

    `supervised=True` (the default under `ihs serve --workers N`): the supervising process files
    this writer's journal, and the writer files only when flushed.
    """

    def __init__(self, store, *, durability: str | None = None, max_batch: int = 500, file_delay: float | None = None,
                 max_backlog: int = MAX_BACKLOG, supervised_filing: bool | None = None,
                 rotate_bytes: int = ROTATE_BYTES):
        self.store = store
        self.durability = durability or durability_from_env()
        if self.durability not in LEVELS:
            raise ValueError(f"durability is 'commit' or 'flush', not {self.durability!r}")
        self.max_batch = max_batch
        self.max_backlog = max_backlog
        self.rotate_bytes = rotate_bytes
        self.directory = directory_of(store)
        self.supervised = supervised() if supervised_filing is None else supervised_filing
        self._cond = threading.Condition()
        self._pending: list[_Ticket] = []
        self._committing = False
        self._journal: Journal | None = None
        self.filer = JournalFiler(store, self.directory, own=self._journal_path,
                                  synced=self.durability == "flush", on_filed=self._filed,
                                  **({} if file_delay is None else {"file_delay": file_delay}))
        self.commits = 0  # journal transactions committed (with `events`: the mean batch size)
        self.events = 0
        self.filed = 0  # of this writer's own journal, as far as this writer knows

    @property
    def file_delay(self) -> float:
        return self.filer.file_delay

    @file_delay.setter
    def file_delay(self, seconds: float) -> None:
        self.filer.file_delay = seconds

    def write(self, event: dict, *, checked: bool = False) -> None:
        """Journal `event`; returns once it is committed (raises what the commit raised).

        `checked=True`: the event comes from `audit_event` and needs no validation (see `record`).
        """
        if not checked:
            validate(event)  # a bad event fails its own caller, never the batch it would have joined
        ticket = _Ticket(event)
        with self._cond:
            while self._backlog() >= self.max_backlog:  # filing has fallen too far behind
                self._wake_filer()
                self._cond.wait(0.05)
            self._pending.append(ticket)
            while not ticket.settled:
                if self._committing:
                    self._cond.wait()
                else:
                    self._lead()
        if ticket.error is not None:
            raise ticket.error
        self._wake_filer()

    def flush(self, timeout: float = 10) -> None:
        """Wait until every queued event is journaled, then file every journaled one (tests, shutdown),
        those of journals left by ended processes included."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._pending or self._committing) and time.monotonic() < deadline:
                self._cond.wait(0.01)
        self.filer.file_round(orphans_now=True)

    def close(self, timeout: float = 10) -> None:
        """Journal and file everything queued, then end the filer thread and remove the journal (shutdown).

        What cannot be filed now stays in the journal, which the next filer to look adopts."""
        try:
            self.flush(timeout)
        except Exception:
            log.exception("journaled audit events could not be filed at shutdown; the next filer files them")
        self.filer.stop(timeout)
        with self._cond:
            self._retire_journal()

    # -- the commit ----------------------------------------------------------------------------

    def _lead(self) -> None:
        """Commit the queued batch as its leader; called and returns holding `_cond`."""
        batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
        self._committing = True
        journal = self._open_journal()
        self._cond.release()
        error = None
        try:
            journal.append([t.event for t in batch])
        except BaseException as exc:  # every waiting request learns its event was not stored
            log.exception("audit events could not be journaled", extra={"fields": {"events": len(batch)}})
            error = exc
        finally:
            self._cond.acquire()
        for ticket in batch:
            ticket.settled, ticket.error = True, error
        if error is None:
            self.commits += 1
            self.events += len(batch)
            if journal.size() >= self.rotate_bytes:  # a new journal; a filer files this one to its end and removes it
                self._retire_journal()
        else:  # a journal that failed is not written again: the next commit starts a new one
            self._retire_journal()
        self._committing = False
        self._cond.notify_all()

    def _open_journal(self) -> Journal:
        if self._journal is None:
            ensure_audit_schema(self.store.engine)
            self._journal = Journal.create(self.directory, synced=self.durability == "flush")
        return self._journal

    def _journal_path(self):
        journal = self._journal
        return journal.path if journal is not None else None

    def _retire_journal(self) -> None:
        """Close the journal; removed if everything in it is filed, else left for a filer to adopt."""
        journal, self._journal = self._journal, None
        if journal is None:
            return
        self.filer.forget_reader(journal.path)
        try:
            emptied = journal.unfiled(self.store) == 0
            if emptied:
                forget(self.store, journal)
        except Exception:  # unreadable: kept for adoption, which refiles nothing already on the chain
            log.exception("the audit journal could not be checked", extra={"fields": {"journal": journal.name}})
            emptied = False
        journal.close(remove=emptied)

    # -- filing --------------------------------------------------------------------------------

    def _wake_filer(self) -> None:
        if not self.supervised:
            self.filer.wake()

    def _filed(self, count: int) -> None:
        # without `_cond`: a leader holding it may be waiting for this filer's round (`forget_reader`);
        # readers waiting on the backlog look again every 50 ms
        self.filed += count

    def _backlog(self) -> int:
        """Journaled events not filed yet (asks the journal when another process files it)."""
        backlog = self.events - self.filed
        if backlog >= self.max_backlog and self.supervised and self._journal is not None:
            self.filed = self.events - self._journal.unfiled(self.store)
            backlog = self.events - self.filed
        return backlog
