"""Filing journaled read AuditEvents onto the chain (ihs/audit/journal.py), on a thread of lower CPU priority.

Two kinds of process run a filer. Each `AuditWriter` files its own journal and those of processes
that ended. Under `ihs serve --workers N` a filing process of the supervisor's files every
worker's journal instead (`SUPERVISOR`, `run_filing_process`), so the workers that answer requests
spend no CPU on filing at all.
Whoever files, the journal's mark in the store (`file_journal`) makes each event filed once.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from ihs.audit.journal import Journal, JournalBroken, file_journal, forget, journal_paths, orphans

log = logging.getLogger("ihs.audit")

# Set by `ihs serve --workers N` for its workers: the supervising process files their journals.
SUPERVISOR = "IHS_AUDIT_FILER"
FILE_DELAY = 0.1  # journaled events gather this long before a round: fewer, larger transactions
IDLE_SECONDS = 5.0  # a writer's filer with nothing to do for this long ends (restarted on demand)
ORPHAN_SECONDS = 30.0  # how often a writer's filer looks for journals left by processes that ended
# Events filed per transaction. SQLite holds its one write lock for the whole filing transaction,
# and changes wait for it; PostgreSQL locks rows, so large batches cost nobody.
FILE_BATCH = {"sqlite": 100, "postgresql": 500}
FILER_NICE = 19  # the filer thread runs only when the requests leave a CPU idle (Linux: per thread)
PR_SET_PDEATHSIG = 1  # Linux prctl: a signal for this process when its parent ends
CHECKPOINT_SECONDS = 1.0  # a SQLite checkpoint writes the log's pages into the file and flushes it twice: not every round


def _altered(journal: Journal) -> None:
    log.critical("an audit journal was altered; run `ihs audit verify`", extra={"fields": {"journal": journal.name}})


def supervised() -> bool:
    """Whether this process's journals are filed by the supervising process."""
    return os.environ.get(SUPERVISOR) == "supervisor"


class JournalFiler:
    """Files journals from `directory`: the one at `own()`, those of ended processes, and with `every_journal` all.

    It reads and trims each journal on a connection of its own: the writer's connection is its
    leaders' alone, so a filer never sees rows of a commit still in progress.
    """

    def __init__(self, store, directory: Path, *, own: Callable[[], Path | None] = lambda: None,
                 every_journal: bool = False, synced: bool = False, file_delay: float = FILE_DELAY,
                 on_filed: Callable[[int], None] = lambda n: None):
        self.store = store
        self.directory = directory
        self.own = own
        self.every_journal = every_journal
        self.synced = synced
        self.file_delay = file_delay
        self.on_filed = on_filed
        self.batch = FILE_BATCH[store.dialect]
        self.lock = threading.Lock()  # one round at a time: a caller waiting on it sees the round's work
        self._readers: dict[Path, Journal] = {}  # journals of live writers, by path
        self._orphans_checked = 0.0
        self._checkpointed = 0.0  # when the store was last checkpointed
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._halt = threading.Event()  # set by stop(): ends the wait between rounds at once
        self._guard = threading.Lock()

    def file_round(self, *, orphans_now: bool = False) -> int:
        """File what is journaled now; returns how many events were filed."""
        with self.lock:
            filed = 0
            own = self.own()
            if own is not None:
                filed += self._drain(self._reader(own))
                if filed:
                    self.on_filed(filed)
            if self.every_journal:
                filed += self._file_others()
            elif orphans_now or time.monotonic() - self._orphans_checked > ORPHAN_SECONDS:
                filed += self._adopt_orphans()
            return filed

    def _drain(self, journal: Journal) -> int:
        filed = 0
        while True:
            done = file_journal(self.store, journal, self.batch, synced=self.synced)
            filed += done
            if done < self.batch:
                break
        if filed and time.monotonic() - self._checkpointed > CHECKPOINT_SECONDS:
            self._checkpointed = time.monotonic()
            self.store.checkpoint()  # unsynced commits leave the checkpoint to the caller (Store.session)
        return filed

    def _reader(self, path: Path) -> Journal:
        reader = self._readers.get(path)
        if reader is None:
            reader = self._readers[path] = Journal(path)
        return reader

    def forget_reader(self, path: Path) -> None:
        """Close the connection to a journal its writer is about to remove."""
        with self.lock:
            reader = self._readers.pop(path, None)
            if reader is not None:
                reader.close(remove=False)

    def _adopt_orphans(self) -> int:
        """File and remove the journals of processes that ended before filing all their events."""
        self._orphans_checked = time.monotonic()
        filed = 0
        for journal in orphans(self.directory):
            reader = self._readers.pop(journal.path, None)
            if reader is not None:
                reader.close(remove=False)
            try:
                filed += self._drain(journal)
                forget(self.store, journal)
                journal.close(remove=True)
                log.info("filed the audit journal of an ended process", extra={"fields": {"journal": journal.name}})
            except JournalBroken:
                journal.close(remove=False)  # kept as evidence; `ihs audit verify` names it
                _altered(journal)
            except BaseException:
                journal.close(remove=False)
                raise
        return filed

    def _file_others(self) -> int:
        filed = self._adopt_orphans()
        present = set(journal_paths(self.directory))
        for path in list(self._readers):
            if path not in present:  # removed by its process at its end
                self._readers.pop(path).close(remove=False)
        for path in sorted(present):
            try:
                reader = self._reader(path)
            except Exception:  # removed meanwhile
                continue
            try:
                filed += self._drain(reader)
            except JournalBroken:
                _altered(reader)
        return filed

    # -- the thread ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Have a round run soon (starting the thread if it is not running)."""
        self._wake.set()
        with self._guard:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="audit-filer", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        with self._guard:
            self._stopping = True
            thread = self._thread
        self._halt.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
        for reader in self._readers.values():
            reader.close(remove=False)
        self._readers.clear()

    def _run(self) -> None:
        _yield_to_requests()
        while True:
            # a writer's filer is woken by its commits; the supervisor's polls the other processes' journals
            woken = True if self.every_journal else self._wake.wait(IDLE_SECONDS)
            with self._guard:
                if self._stopping or not (woken or self._wake.is_set()):
                    self._thread = None
                    return
            if self._halt.wait(self.file_delay):
                continue  # stopping: the check above ends the thread
            self._wake.clear()
            try:
                if self.file_round():
                    self._wake.set()  # more may have come meanwhile
            except Exception:  # the events stay in their journal; the next round retries
                log.exception("journaled audit events could not be filed")
                self._halt.wait(1)
                self._wake.set()


def _yield_to_requests() -> None:
    """Run this thread only on a CPU nothing else wants (Linux SCHED_IDLE, else the lowest nice).

    Under a burst of reads the filing falls behind, not the reads: a request's process preempts
    an idle-class thread as soon as it wakes, which a low nice value alone does not promise.
    """
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, tid, FILER_NICE)
    except (AttributeError, OSError):
        pass


def run_filing_process(url: str, durability: str, log_level: int = logging.INFO) -> None:
    """The filing process of `ihs serve --workers N`: files every worker's journal until SIGTERM,
    then once more (the workers have ended) and exits.

    It runs in a session of its own at the lowest priority, so its CPU share comes after the
    requests' even where the kernel shares CPU between sessions first (Linux autogroups), and it
    dies with the supervising process.
    """
    from ihs.api.observability import configure_logging
    from ihs.audit.journal import directory_of
    from ihs.store.store import Store

    parent = os.getppid()
    configure_logging(log_level)  # the server's log format, on the supervisor's standard error
    _background_session()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervising process ends the filer when it ends
    store = Store(url)  # `ihs serve` created the schema
    filer = JournalFiler(store, directory_of(store), every_journal=True, synced=durability == "flush")
    filer.wake()
    try:
        while not stopping.wait(1):
            if os.getppid() != parent:  # the supervising process ended before it could have us end with it
                return
        filer.file_round(orphans_now=True)
    finally:
        filer.stop()
        store.dispose()


def _background_session() -> None:
    """Leave the supervising process's session and scheduling group (Linux), ending with that process."""
    try:
        os.setsid()
        Path("/proc/self/autogroup").write_text(str(FILER_NICE))
    except OSError:  # not Linux, or no autogroups: the filer thread's own priority still applies
        pass
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (AttributeError, OSError):
        pass
