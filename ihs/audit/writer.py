"""Group commit of AuditEvents for requests that change nothing (reads, searches, refusals, exports).

A read has no transaction of its own to carry its AuditEvent, yet the event must be committed
before the response is sent. `writer.write(event)` runs on the request's own worker thread, right
after the read: the first caller to find no commit running becomes the leader, takes everything
queued, puts it on the chain in one write transaction on the writer's own driver connection
(`ihs.audit.chain.append`: a chain link and the event's content per event, two small rows) and
settles every ticket in the batch; callers that arrived meanwhile wait, and one of them leads the
next commit. Batches grow with the load without any timer or extra thread hop. A filer thread then
stores the appended events as indexed AuditEvent resources, several per transaction
(`ihs.audit.chain.file_pending`), shortly after the responses.

How durable the commit is before the request goes on (`IHS_READ_AUDIT_DURABILITY`):

- `commit` (default): committed in the database. SQLite writes its WAL without waiting for the
  disk (synchronous=NORMAL), PostgreSQL commits with synchronous_commit off: the events survive a
  crash of any IHS process; an operating-system crash or power loss can lose those of the last
  moments (SQLite: since its last checkpoint; PostgreSQL: up to three WAL-writer delays, 0.6 s).
- `flush`: each shared commit also waits for the disk flush, as a change does: nothing is lost
  even on power loss, and every read waits one flush (3-4 ms on the development machine's disk).

Changes (create, update, delete) record their event with `ihs.audit.record` in their own unit of
work instead: it commits with the change.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ihs.audit.chain import append, ensure_audit_schema, file_pending, unfiled
from ihs.fhir.validation import validate

log = logging.getLogger("ihs.audit")

DURABILITY = "IHS_READ_AUDIT_DURABILITY"
LEVELS = ("commit", "flush")
IDLE_SECONDS = 5.0  # a filer thread with nothing to do for this long ends (restarted on demand)
FILE_DELAY = 0.1  # the filer lets appended events gather this long: fewer, larger transactions
# Events filed per transaction. SQLite: a moderate number, since reads wait on its one write lock to
# commit their own events (the events are prepared before the lock; 50 measured best against 10 and
# 200); PostgreSQL locks rows, so filing never holds an append up and large batches cost less.
FILE_BATCH = {"sqlite": 50, "postgresql": 200}


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
    """Appends AuditEvents to `store`'s chain in shared transactions; every caller waits for its commit."""

    def __init__(self, store, *, durability: str | None = None, max_batch: int = 500,
                 file_delay: float = FILE_DELAY):
        self.store = store
        self.file_delay = file_delay
        self.durability = durability or durability_from_env()
        if self.durability not in LEVELS:
            raise ValueError(f"durability is 'commit' or 'flush', not {self.durability!r}")
        self.max_batch = max_batch
        self.file_batch = FILE_BATCH[store.dialect]
        self._cond = threading.Condition()
        self._pending: list[_Ticket] = []
        self._committing = False
        self._filer: threading.Thread | None = None
        self._to_file = threading.Event()
        self._raw = None  # the writer's own driver connection, kept between commits
        self._lock_file = _lock_path(store)
        self._held = threading.local()  # each thread's open lock file
        self._stopping = False
        self._filing = threading.Lock()  # flush() and the filer file one at a time: flush sees the filer's work
        self.commits = 0  # transactions committed (with `events`: the mean batch size)
        self.events = 0

    def write(self, event: dict, *, checked: bool = False) -> None:
        """Put `event` on the chain; returns once it is committed (raises what the commit raised).

        `checked=True`: the event comes from `audit_event` and needs no validation (see `record`).
        """
        if not checked:
            validate(event)  # a bad event fails its own caller, never the batch it would have joined
        ticket = _Ticket(event)
        with self._cond:
            self._stopping = False
            self._pending.append(ticket)
            while not ticket.settled:
                if self._committing:
                    self._cond.wait()
                else:
                    self._lead()
            if ticket.error is None:
                self._to_file.set()  # before the check: a filer about to end sees it under this lock
                if self._filer is None:
                    self._start_filer()
        if ticket.error is not None:
            raise ticket.error

    def flush(self, timeout: float = 10) -> None:
        """Wait until every queued event is committed, then file every appended one (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._pending or self._committing) and time.monotonic() < deadline:
                self._cond.wait(0.01)
        while time.monotonic() < deadline:
            with self._filing:
                # none filed may only mean another process's filer took them: done when none is left
                if not file_pending(self.store, self.file_batch, self._serialized) and not unfiled(self.store):
                    return

    def close(self, timeout: float = 10) -> None:
        """Commit and file everything queued, then end the filer thread and the connection (shutdown)."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            filer = self._filer
            self._close()
        self._to_file.set()
        if filer is not None:
            filer.join(timeout)

    # -- the commit ----------------------------------------------------------------------------

    def _lead(self) -> None:
        """Commit the queued batch as its leader; called and returns holding `_cond`."""
        batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
        self._committing = True
        self._cond.release()
        error = None
        try:
            self._commit([t.event for t in batch])
        except BaseException as exc:  # every waiting request learns its event was not stored
            log.exception("audit events could not be stored", extra={"fields": {"events": len(batch)}})
            error = exc
        finally:
            self._cond.acquire()
        if error is not None:
            self._close()  # a broken connection is not reused
        for ticket in batch:
            ticket.settled, ticket.error = True, error
        self._committing = False
        self._cond.notify_all()

    def _commit(self, events: list[dict]) -> None:
        dialect = self.store.dialect
        raw = self._connection()
        with self._serialized():
            cursor = raw.cursor()
            try:
                if dialect == "sqlite":
                    cursor.execute("BEGIN IMMEDIATE")
                    append(cursor, dialect, events)
                    raw.commit()
                else:
                    # pipelined: two round trips in all, and the chain head is locked for one of them
                    with raw.pipeline():
                        append(cursor, dialect, events)
                        raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cursor.close()
        self.commits += 1
        self.events += len(events)

    def _connection(self):
        """The driver connection (sqlite3 or psycopg) the leaders commit on: no SQLAlchemy per statement."""
        if self._raw is None:
            ensure_audit_schema(self.store.engine)
            pooled = self.store.engine.raw_connection()
            driver = pooled.driver_connection
            if self.store.dialect == "sqlite":
                mode = "FULL" if self.durability == "flush" else "NORMAL"
                driver.execute(f"PRAGMA synchronous={mode}")
                # a checkpoint flushes the database file twice; the filer's and the writers' connections
                # run them, never a commit that requests are waiting on
                driver.execute("PRAGMA wal_autocheckpoint=0")
            elif self.durability == "commit":
                driver.execute("SET synchronous_commit TO OFF")
                driver.commit()
            self._raw = pooled
        return self._raw.driver_connection

    def _close(self) -> None:
        pooled, self._raw = self._raw, None
        if pooled is not None:
            try:
                pooled.invalidate()  # its durability settings must not reach the pool's other users
            except Exception:  # closing a broken connection may fail too
                log.debug("closing the audit connection failed", exc_info=True)

    # -- the filer -----------------------------------------------------------------------------

    def _start_filer(self) -> None:
        self._filer = threading.Thread(target=self._file_appended, name="audit-filer", daemon=True)
        self._filer.start()

    def _file_appended(self) -> None:
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
                while True:
                    with self._filing:
                        filed = file_pending(self.store, self.file_batch, self._serialized)
                    if filed < self.file_batch:
                        break
            except Exception:  # the events stay on the chain and in audit_pending; the next round retries
                log.exception("appended audit events could not be filed")
                time.sleep(1)
                self._to_file.set()

    @contextmanager
    def _serialized(self):
        """SQLite: one audit transaction at a time across the worker processes.

        SQLite's own wait for its write lock sleeps 1, 2, 5 ... ms between tries; a file lock hands
        over the moment the other process commits, and that process's requests queue meanwhile.
        """
        if self._lock_file is None:
            yield
            return
        handle = getattr(self._held, "handle", None)
        if handle is None:  # one open file per thread: flock excludes other open files, not other threads
            handle = self._held.handle = open(self._lock_file, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock_path(store) -> str | None:
    if store.dialect != "sqlite":
        return None
    database = store.engine.url.database
    return f"{database}.audit.lock" if database and database != ":memory:" else None
