"""A worker process's journal of read AuditEvents: stored before the response, chained when filed.

A read has no transaction of its own, and putting its AuditEvent on the chain means taking the
database's one write lock (SQLite's writer, PostgreSQL's chain-head row) for every read. Instead
each `AuditWriter` appends to a journal of its own: a small SQLite file in `journal_directory(url)`
that only its process writes, so a read's commit waits on no other process and on no change.
The filer (ihs/audit/writer.py) later puts the journal's events on the chain and stores them as
AuditEvent resources, many per transaction (`file_journal`).

Each journal row carries a hash linking it to the row before it (the SHA-256 of the previous row's
hash and this row's content), so a journal row changed, removed or re-ordered before it is filed
is refused at filing and named by `ihs audit verify`. The store remembers, per journal, the last
row filed and its hash (`audit_journal_filed`, written in the filing transaction): the link
continues across filings, and rows a crash left behind after their filing committed are dropped,
never filed twice.

A journal's file stays locked (flock) while its process lives. A journal nobody holds belongs to
a process that ended without filing everything; any writer's filer adopts it, files its events
and removes it (`orphans`).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket
import sqlite3
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import orjson

from ihs.audit.chain import GENESIS, record_many

SUFFIX = ".journal"

_READ_MARK_SQL = {"sqlite": "SELECT upto, hash FROM audit_journal_filed WHERE journal = ?",
                  "postgresql": "SELECT upto, hash FROM audit_journal_filed WHERE journal = %s"}
_MARK_SQL = {**_READ_MARK_SQL, "postgresql": _READ_MARK_SQL["postgresql"] + " FOR UPDATE"}
_SET_MARK_SQL = ("INSERT INTO audit_journal_filed (journal, upto, hash) VALUES ({p}, {p}, {p}) "
                 "ON CONFLICT (journal) DO UPDATE SET upto = excluded.upto, hash = excluded.hash")
_PLACEHOLDER = {"sqlite": "?", "postgresql": "%s"}


class JournalBroken(Exception):
    """A journal row does not follow the row before it: changed, removed or re-ordered on disk."""


def journal_directory(database_url: str) -> Path:
    """Where the journals of a database live: beside a SQLite file, else in the data directory."""
    if database_url.startswith("sqlite") and "///" in database_url:
        path = database_url.split("///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            return Path(f"{Path(path).resolve()}.audit-journal")
        return Path(tempfile.gettempdir()) / f"ihs-audit-journal-{os.getpid()}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", database_url.split("@")[-1])
    return Path(os.environ.get("IHS_DATA_DIR") or "ihs-data").resolve() / "audit-journal" / name


def directory_of(store) -> Path:
    return journal_directory(store.engine.url.render_as_string(hide_password=True))


def link(previous: str, content: str) -> str:
    return hashlib.sha256(f"{previous}{content}".encode()).hexdigest()


def journal_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []


def _follow(name: str, upto: int, previous: str, rows) -> tuple[int, str]:
    """(last n, its hash) after checking that each row follows the one before it; else JournalBroken."""
    for n, content, row_hash in rows:
        if n != upto + 1:
            raise JournalBroken(f"journal {name}: rows {upto + 1}..{n - 1} are missing")
        if link(previous, content) != row_hash:
            raise JournalBroken(f"journal {name}: row {n} was changed or moved")
        upto, previous = n, row_hash
    return upto, previous


def _mark(conn, dialect: str, name: str, sql=_READ_MARK_SQL) -> tuple[tuple[int, str] | None, int, str]:
    """(the stored mark row or None, last filed n, its hash) of journal `name`."""
    mark = conn.exec_driver_sql(sql[dialect], (name,)).first()
    return mark, *((mark[0], mark[1]) if mark else (0, GENESIS))


class Journal:
    """One journal file: its writer holds `lock` (flock) for as long as it is open; filers open it without."""

    def __init__(self, path: Path, lock=None, *, synchronous: str = "NORMAL"):
        self.path = path
        self.name = path.name
        self._lock = lock
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("PRAGMA wal_autocheckpoint=0")  # the filer checkpoints, never a read's commit
        self.db.execute("CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY, content TEXT NOT NULL, "
                        "hash TEXT NOT NULL)")
        last = self.db.execute("SELECT n, hash FROM events ORDER BY n DESC LIMIT 1").fetchone()
        self._last = tuple(last) if last else None  # (n, hash) of the newest row, None until one is read

    @classmethod
    def create(cls, directory: Path, *, synchronous: str = "NORMAL") -> "Journal":
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        lock = _lock(path, blocking=True)
        return cls(path, lock, synchronous=synchronous)

    def append(self, events: list[dict]) -> None:
        """Write `events` in one transaction."""
        n, previous = self._last or (0, GENESIS)
        rows = []
        for event in events:
            content = orjson.dumps(event).decode()
            n, previous = n + 1, link(previous, content)
            rows.append((n, content, previous))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT INTO events (n, content, hash) VALUES (?, ?, ?)", rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._last = (n, previous)

    def rows(self, after: int, limit: int) -> list[tuple[int, str, str]]:
        return self.db.execute("SELECT n, content, hash FROM events WHERE n > ? ORDER BY n LIMIT ?",
                               (after, limit)).fetchall()

    def drop(self, upto: int) -> None:
        """Forget the rows up to `upto` (they are filed)."""
        self.db.execute("DELETE FROM events WHERE n <= ?", (upto,))

    def unfiled(self) -> int:
        """How many rows are waiting to be filed."""
        first, last = self.db.execute("SELECT min(n), max(n) FROM events").fetchone()
        return 0 if first is None else last - first + 1

    def empty(self) -> bool:
        return self.unfiled() == 0

    def checkpoint(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self, *, remove: bool) -> None:
        try:
            self.db.close()
        except sqlite3.Error:  # a broken connection: the lock is released all the same
            pass
        if remove:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()  # releases the flock
        if remove and self._lock is not None:
            Path(f"{self.path}.lock").unlink(missing_ok=True)


def _lock(path: Path, *, blocking: bool):
    handle = open(f"{path}.lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.close()
        return None
    return handle


def orphans(directory: Path) -> list[Journal]:
    """The journals in `directory` whose process has ended, each now locked by the caller."""
    found = []
    for path in journal_paths(directory):
        lock = _lock(path, blocking=False)
        if lock is None:
            continue  # its process is alive (or another filer adopted it)
        if not path.exists():  # filed and removed between the listing and the lock
            lock.close()
            continue
        found.append(Journal(path, lock))
    return found


def unfiled_events(store) -> int:
    """Read audits journaled and not filed yet, over every journal of `store` (for monitoring)."""
    waiting = 0
    for path in journal_paths(directory_of(store)):
        try:
            with _read_only(path) as db:
                first, last = db.execute("SELECT min(n), max(n) FROM events").fetchone()
        except sqlite3.Error:  # removed meanwhile
            continue
        waiting += 0 if first is None else last - first + 1
    return waiting


@contextmanager
def _read_only(path: Path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def file_journal(store, journal: Journal, limit: int, *, synced: bool = True) -> int:
    """Put up to `limit` of `journal`'s oldest events on the chain and store them; returns how many.

    The events, their chain links and the journal's mark commit together; the filed rows are then
    dropped from the journal. Raises JournalBroken if a row does not follow the one before it.
    """
    dialect = store.dialect
    p = _PLACEHOLDER[dialect]
    with store.session(write=True, synced=synced) as uow:
        mark, upto, previous = _mark(uow.conn, dialect, journal.name, _MARK_SQL)
        rows = journal.rows(upto, limit)
        if rows:
            upto, previous = _follow(journal.name, upto, previous, rows)
            record_many(uow, [orjson.loads(content) for _, content, _ in rows], checked=True)
            uow.conn.exec_driver_sql(_SET_MARK_SQL.format(p=p), (journal.name, upto, previous))
        filed = len(rows)
    if mark or filed:
        journal.drop(upto)
    return filed


def forget(store, journal: Journal) -> None:
    """Remove a fully filed journal's mark (its file is removed with it)."""
    p = _PLACEHOLDER[store.dialect]
    with store.session(write=True) as uow:
        uow.conn.exec_driver_sql(f"DELETE FROM audit_journal_filed WHERE journal = {p}", (journal.name,))


def check_journals(store) -> str | None:
    """The first journal row not filed yet that does not follow the one before it, described; None if all do."""
    for path in journal_paths(directory_of(store)):
        with store.engine.connect() as conn:
            _, upto, previous = _mark(conn, store.dialect, path.name)
        try:
            with _read_only(path) as db:
                _follow(path.name, upto, previous,
                        db.execute("SELECT n, content, hash FROM events WHERE n > ? ORDER BY n", (upto,)))
        except JournalBroken as exc:
            return str(exc)
        except sqlite3.DatabaseError as exc:
            return f"journal {path.name} cannot be read: {exc}"
    return None
