"""Group commit of AuditEvents for requests that change nothing (reads, searches, refusals, exports).

A read has no transaction of its own to carry its AuditEvent, yet the event must be stored before
the response is sent. `writer.write(event)` runs on the request's own worker thread, right after
the read: the first caller to find no commit running becomes the leader, takes everything queued,
writes it to the process's own journal in one transaction (ihs/audit/journal.py: a small SQLite
file no other process writes, so the commit waits on no other worker and on no change) and settles
every ticket in the batch; callers that arrived meanwhile wait, and one of them leads the next
commit. Batches grow with the load without any timer or extra thread hop. A filer thread then puts
the journal's events on the chain and stores them as indexed AuditEvent resources, many per
transaction, shortly after the responses; it runs at a lower CPU priority than the requests, so
under a burst of reads the filing falls behind rather than the reads, up to `MAX_BACKLOG` events
per process, after which reads wait for it.

How durable the journal's commit is before the request goes on (`IHS_READ_AUDIT_DURABILITY`):

- `commit` (default): written to the journal's log without waiting for the disk
  (synchronous=NORMAL): the events survive a crash of any IHS process; an operating-system crash
  or power loss can lose those of the last moments.
- `flush`: each shared commit also waits for the disk flush, as a change does, and so does filing:
  nothing is lost even on power loss, and every read waits one flush.

Filing on PostgreSQL always commits synchronously: the journal's rows are dropped only once the
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
from ihs.audit.journal import Journal, JournalBroken, directory_of, file_journal, forget, orphans
from ihs.fhir.validation import validate

log = logging.getLogger("ihs.audit")

DURABILITY = "IHS_READ_AUDIT_DURABILITY"
LEVELS = ("commit", "flush")
IDLE_SECONDS = 5.0  # a filer thread with nothing to do for this long ends (restarted on demand)
FILE_DELAY = 0.1  # the filer lets journaled events gather this long: fewer, larger transactions
ORPHAN_SECONDS = 30.0  # how often a filer looks for journals left by processes that ended
# Events filed per transaction. SQLite holds its one write lock for the whole filing transaction,
# and changes wait for it; PostgreSQL locks rows, so large batches cost nobody.
FILE_BATCH = {"sqlite": 100, "postgresql": 500}
MAX_BACKLOG = 50_000  # journaled events not filed yet, per process, before reads wait for the filer
FILER_NICE = 10  # the filer thread's CPU priority below the requests' (Linux: per thread)


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
    """Journals AuditEvents in shared transactions (every caller waits for its commit) and files them."""

    def __init__(self, store, *, durability: str | None = None, max_batch: int = 500,
                 file_delay: float = FILE_DELAY, max_backlog: int = MAX_BACKLOG):
        self.store = store
        self.file_delay = file_delay
        self.durability = durability or durability_from_env()
        if self.durability not in LEVELS:
            raise ValueError(f"durability is 'commit' or 'flush', not {self.durability!r}")
        self.max_batch = max_batch
        self.max_backlog = max_backlog
        self.file_batch = FILE_BATCH[store.dialect]
        self.directory = directory_of(store)
        self._cond = threading.Condition()
        self._pending: list[_Ticket] = []
        self._committing = False
        self._journal: Journal | None = None
        self._filer: threading.Thread | None = None
        self._to_file = threading.Event()
        self._stopping = False
        self._filing = threading.Lock()  # flush() and the filer file one at a time: flush sees the filer's work
        self._orphans_checked = 0.0
        self.commits = 0  # journal transactions committed (with `events`: the mean batch size)
        self.events = 0
        self.filed = 0  # of this writer's own journal

    def write(self, event: dict, *, checked: bool = False) -> None:
        """Journal `event`; returns once it is committed (raises what the commit raised).

        `checked=True`: the event comes from `audit_event` and needs no validation (see `record`).
        """
        if not checked:
            validate(event)  # a bad event fails its own caller, never the batch it would have joined
        ticket = _Ticket(event)
        with self._cond:
            self._stopping = False
            while self.events - self.filed >= self.max_backlog:  # filing has fallen too far behind
                self._to_file.set()
                self._ensure_filer()
                self._cond.wait(0.05)
            self._pending.append(ticket)
            while not ticket.settled:
                if self._committing:
                    self._cond.wait()
                else:
                    self._lead()
            if ticket.error is None:
                self._to_file.set()  # before the check: a filer about to end sees it under this lock
                self._ensure_filer()
        if ticket.error is not None:
            raise ticket.error

    def flush(self, timeout: float = 10) -> None:
        """Wait until every queued event is journaled, then file every journaled one (tests, shutdown),
        those of journals left by ended processes included."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._pending or self._committing) and time.monotonic() < deadline:
                self._cond.wait(0.01)
        with self._filing:
            while self._file_own() and time.monotonic() < deadline:
                pass
            self._adopt_orphans()

    def close(self, timeout: float = 10) -> None:
        """Journal and file everything queued, then end the filer thread and remove the journal (shutdown).

        What cannot be filed now stays in the journal, which the next writer to start adopts."""
        try:
            self.flush(timeout)
        except Exception:
            log.exception("journaled audit events could not be filed at shutdown; the next start files them")
        with self._cond:
            self._stopping = True
            filer = self._filer
        self._to_file.set()
        if filer is not None:
            filer.join(timeout)
        with self._filing, self._cond:
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
        else:  # a journal that failed is not written again: the next commit starts a new one
            self._retire_journal()
        self._committing = False
        self._cond.notify_all()

    def _open_journal(self) -> Journal:
        if self._journal is None:
            ensure_audit_schema(self.store.engine)
            self._journal = Journal.create(self.directory,
                                           synchronous="FULL" if self.durability == "flush" else "NORMAL")
        return self._journal

    def _retire_journal(self) -> None:
        """Close the journal; removed if everything in it is filed, else left for a filer to adopt."""
        journal, self._journal = self._journal, None
        if journal is None:
            return
        try:
            emptied = journal.empty()
            if emptied:
                forget(self.store, journal)
        except Exception:  # unreadable: kept for adoption, which refiles nothing already on the chain
            log.exception("the audit journal could not be checked", extra={"fields": {"journal": journal.name}})
            emptied = False
        journal.close(remove=emptied)

    # -- the filer -----------------------------------------------------------------------------

    def _ensure_filer(self) -> None:
        if self._filer is None:
            self._filer = threading.Thread(target=self._file_journaled, name="audit-filer", daemon=True)
            self._filer.start()

    def _file_journaled(self) -> None:
        try:  # requests first: under a burst of reads the filing falls behind, not the reads
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FILER_NICE)
        except (AttributeError, OSError):
            pass
        while True:
            if not self._stopping and not self._to_file.wait(IDLE_SECONDS):
                with self._cond:
                    if not self._to_file.is_set():
                        self._filer = None
                        return
            if self._stopping:
                with self._cond:
                    self._filer = None
                return
            time.sleep(self.file_delay)
            self._to_file.clear()
            try:
                with self._filing:
                    while self._file_own() == self.file_batch:
                        pass
                    if time.monotonic() - self._orphans_checked > ORPHAN_SECONDS:
                        self._adopt_orphans()
            except Exception:  # the events stay in the journal; the next round retries
                log.exception("journaled audit events could not be filed")
                time.sleep(1)
                self._to_file.set()

    def _file_own(self) -> int:
        """File one batch of this writer's journal; returns how many were filed."""
        journal = self._journal
        if journal is None:
            return 0
        filed = file_journal(self.store, journal, self.file_batch, synced=self.durability == "flush")
        self.store.checkpoint()  # unsynced commits leave the checkpoint to the caller (ihs.store.Store.session)
        if filed:
            with self._cond:
                self.filed += filed
                self._cond.notify_all()
        return filed

    def _adopt_orphans(self) -> None:
        """File and remove the journals of processes that ended before filing all their events."""
        self._orphans_checked = time.monotonic()
        for journal in orphans(self.directory):
            try:
                while file_journal(self.store, journal, self.file_batch, synced=True):
                    pass
                forget(self.store, journal)
                journal.close(remove=True)
                log.info("filed the audit journal of an ended process", extra={"fields": {"journal": journal.name}})
            except JournalBroken:
                journal.close(remove=False)  # kept as evidence; `ihs audit verify` names it
                log.critical("an audit journal was altered; run `ihs audit verify`",
                             extra={"fields": {"journal": journal.name}})
            except BaseException:
                journal.close(remove=False)
                raise
