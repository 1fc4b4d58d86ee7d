"""Group commit of AuditEvents for requests that change nothing (reads, searches, refusals, exports).

A read has no transaction of its own to carry its AuditEvent, yet the event must be committed
before the response is sent. `await writer.append(event)` queues the event and waits on an asyncio
future; one committer thread per writer takes everything queued, puts it on the chain in one write
transaction (`ihs.audit.chain.append`: a chain link and the event's content per event, two small
rows) and resolves every waiting future with the commit's result. While it commits, the next
requests queue up, so batches grow with the load without any timer. `write(event)` does the same
for callers on a thread. A filer thread then stores the appended events as indexed AuditEvent
resources, many per transaction (`ihs.audit.chain.file_pending`), shortly after the responses.

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

import asyncio
import fcntl
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ihs.audit.chain import append, file_pending
from ihs.fhir.validation import validate

log = logging.getLogger("ihs.audit")

DURABILITY = "IHS_READ_AUDIT_DURABILITY"
LEVELS = ("commit", "flush")
IDLE_SECONDS = 5.0  # a committer or filer thread with nothing to do for this long ends (restarted on demand)
FILE_DELAY = 0.1  # the filer lets appended events gather this long: fewer, larger transactions
FILE_BATCH = 200  # events filed per transaction (SQLite: it holds the one write lock meanwhile)


def durability_from_env() -> str:
    level = os.environ.get(DURABILITY, "commit")
    if level not in LEVELS:
        raise ValueError(f"{DURABILITY} is 'commit' or 'flush', not {level!r}")
    return level


@dataclass
class _Ticket:
    event: dict
    future: asyncio.Future | None = None  # an async caller's
    loop: asyncio.AbstractEventLoop | None = None
    done: threading.Event | None = None  # a thread caller's
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
        self._cond = threading.Condition()
        self._pending: list[_Ticket] = []
        self._committer: threading.Thread | None = None
        self._committing = False
        self._filer: threading.Thread | None = None
        self._to_file = threading.Event()
        self._conn = None  # the committer's own connection, kept between commits
        self._lock_file = _lock_path(store)
        self._held = threading.local()  # each thread's open lock file
        self._stopping = False
        self._filing = threading.Lock()  # flush() and the filer file one at a time: flush sees the filer's work
        self.commits = 0  # transactions committed (with `events`: the mean batch size)
        self.events = 0

    async def append(self, event: dict, *, checked: bool = False) -> None:
        """Put `event` on the chain; returns once it is committed (raises what the commit raised).

        `checked=True`: the event comes from `audit_event` and needs no validation (see `record`).
        """
        if not checked:
            validate(event)  # a bad event fails its own caller, never the batch it would have joined
        loop = asyncio.get_running_loop()
        ticket = _Ticket(event, future=loop.create_future(), loop=loop)
        self._enqueue(ticket)
        await ticket.future

    def write(self, event: dict, *, checked: bool = False) -> None:
        """`append` for a caller on a thread: blocks until the event is committed."""
        if not checked:
            validate(event)
        ticket = _Ticket(event, done=threading.Event())
        self._enqueue(ticket)
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error

    def flush(self, timeout: float = 10) -> None:
        """Wait until every queued event is committed, then file every appended one (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._pending or self._committing) and time.monotonic() < deadline:
                self._cond.wait(0.01)
        while time.monotonic() < deadline:
            with self._filing, self._serialized():
                if not file_pending(self.store, FILE_BATCH):
                    return

    def close(self, timeout: float = 10) -> None:
        """Commit and file everything queued, then end the committer and filer threads (shutdown)."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            threads = [t for t in (self._committer, self._filer) if t is not None]
            self._cond.notify_all()
        self._to_file.set()
        for thread in threads:
            thread.join(timeout)

    # -- the committer -------------------------------------------------------------------------

    def _enqueue(self, ticket: _Ticket) -> None:
        with self._cond:
            self._stopping = False
            self._pending.append(ticket)
            if self._committer is None:
                self._committer = threading.Thread(target=self._commit_queued, name="audit-committer", daemon=True)
                self._committer.start()
            else:
                self._cond.notify()

    def _commit_queued(self) -> None:
        while True:
            with self._cond:
                self._committing = False
                self._cond.notify_all()  # flush() waiters
                if not self._pending and not self._stopping:
                    self._cond.wait(IDLE_SECONDS)
                if not self._pending:
                    self._committer = None
                    self._close()
                    return
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                self._committing = True
            error = None
            try:
                self._commit([t.event for t in batch])
            except BaseException as exc:  # every waiting request learns its event was not stored
                log.exception("audit events could not be stored", extra={"fields": {"events": len(batch)}})
                self._close()  # a broken connection is not reused
                error = exc
            for ticket in batch:
                _resolve(ticket, error)
            if error is None:
                self._wake_filer()

    def _commit(self, events: list[dict]) -> None:
        conn = self._connection()
        with self._serialized(), conn.begin():
            if self.store.dialect == "postgresql" and self.durability == "commit":
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            append(conn, self.store, events)
        self.commits += 1
        self.events += len(events)

    def _connection(self):
        if self._conn is None:
            conn = self.store.engine.connect()
            if self.store.dialect == "sqlite":
                mode = "FULL" if self.durability == "flush" else "NORMAL"
                conn.connection.driver_connection.execute(f"PRAGMA synchronous={mode}")
            self._conn = conn.execution_options(ihs_write=True)  # SQLite: BEGIN IMMEDIATE
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # its PRAGMA synchronous must not reach the pool's other users
            except Exception:  # closing a broken connection may fail too
                log.debug("closing the audit connection failed", exc_info=True)

    # -- the filer -----------------------------------------------------------------------------

    def _wake_filer(self) -> None:
        self._to_file.set()
        with self._cond:
            if self._filer is None:
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
                    with self._filing, self._serialized():
                        filed = file_pending(self.store, FILE_BATCH)
                    if filed < FILE_BATCH:
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


def _resolve(ticket: _Ticket, error: BaseException | None) -> None:
    if ticket.future is not None:
        ticket.loop.call_soon_threadsafe(_settle, ticket.future, error)
    else:
        ticket.error = error
        ticket.done.set()


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.cancelled():  # the client went away; its event is stored all the same
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
