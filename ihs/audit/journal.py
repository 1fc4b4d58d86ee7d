"""A worker process's journal of read AuditEvents: stored before the response, chained when filed.

A read has no transaction of its own, and putting its AuditEvent on the chain means taking the
database's one write lock (SQLite's writer, PostgreSQL's chain-head row) for every read. Instead
each `AuditWriter` appends to a journal of its own: an append-only file in `journal_directory(url)`
that only its process writes, one line per event (`n<TAB>hash<TAB>event JSON`). Appending a batch
is one `write` call (plus `fdatasync` when reads must survive power loss), so a read's audit waits
on no other process, on no change and on no database. The filer (ihs/audit/filer.py) later puts
the journal's events on the chain and stores them as AuditEvent resources, many per transaction
(`file_journal`).

Each line carries a hash linking it to the line before it (the SHA-256 of the previous line's hash
and this line's content), so a line changed, removed or re-ordered before it is filed is refused
at filing and named by `ihs audit verify`. The store remembers, per journal, the last row filed and
its hash (`audit_journal_filed`, written in the filing transaction): the link continues across
filings, and rows whose filing committed are skipped, never filed twice. Lines are never removed
from a journal: its writer starts a new one past `ROTATE_BYTES`, and the old one is filed to its
end and deleted like the journal of an ended process.

A journal's file stays locked (flock) while its writer has it open. A journal nobody holds belongs
to a process that ended, or to a writer that moved on to a new journal; any filer adopts it, files
its events and removes it (`orphans`).
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
from itertools import islice
from pathlib import Path
from typing import Iterator

import orjson

from ihs.audit.chain import GENESIS, record_many

SUFFIX = ".journal"
ROTATE_BYTES = 64 * 1024 * 1024  # a writer starts a new journal past this size (~40,000 read events)
_CHUNK = 1 << 20  # bytes read at a time when filing
_SQLITE_HEADER = b"SQLite format 3\x00"  # journals written before journals were plain files

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


def filed_upto(store, name: str) -> int:
    """The last row of journal `name` on the chain (0: none)."""
    with store.engine.connect() as conn:
        return _mark(conn, store.dialect, name)[1]


class Journal:
    """One journal file. Its writer (`create`) holds `lock` (flock) while it is open and appends;
    filers open it to read, adopted journals with their lock."""

    def __init__(self, path: Path, lock=None, *, synced: bool = False, writer: bool = False):
        """`writer=True` creates the file (`create`); `synced` flushes each append to the disk."""
        self.path = path
        self.name = path.name
        self._lock = lock
        self._synced = synced
        self._fd = os.open(path, (os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL) if writer else os.O_RDONLY,
                           0o600)
        self._legacy = not writer and os.pread(self._fd, len(_SQLITE_HEADER), 0) == _SQLITE_HEADER
        self._offset = 0  # reading: where the first row not known to be filed starts
        self._ends: dict[int, int] = {}  # reading: where each row last read ends, to move `_offset` past filed rows
        self._size = 0 if writer else None  # a writer counts what it appends to its new file
        self._last: tuple[int, str] | None = None  # the writer's (n, hash) of its newest row

    @classmethod
    def create(cls, directory: Path, *, synced: bool = False) -> "Journal":
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        lock = _lock(path, blocking=True)
        journal = cls(path, lock, synced=synced, writer=True)
        if journal._synced:  # the new file's name must survive power loss too
            _sync_directory(directory)
        return journal

    def append(self, events: list[dict]) -> None:
        """Write `events` with one `write` call: each is in the file when this returns."""
        n, previous = self._last or (0, GENESIS)
        lines = []
        for event in events:
            content = orjson.dumps(event).decode()  # escapes tabs and newlines inside strings
            n, previous = n + 1, link(previous, content)
            lines.append(f"{n}\t{previous}\t{content}\n")
        data = "".join(lines).encode()
        written = os.write(self._fd, data)
        while written < len(data):  # a regular file takes all of it unless the disk is full
            written += os.write(self._fd, data[written:])
        if self._synced:
            os.fdatasync(self._fd)
        self._last = (n, previous)
        self._size += len(data)

    def size(self) -> int:
        return self._size if self._size is not None else os.fstat(self._fd).st_size

    def last(self) -> int:
        """The number of the newest row (0: none)."""
        last = self._last or self._last_row()
        return last[0] if last else 0

    def _last_row(self) -> tuple[int, str] | None:
        if self._legacy:
            with _sqlite(self.path) as db:
                found = db.execute("SELECT n, hash FROM events ORDER BY n DESC LIMIT 1").fetchone()
            return tuple(found) if found else None
        size, span = self.size(), 64 * 1024
        while True:
            start = max(0, size - span)
            tail = os.pread(self._fd, size - start, start)
            complete = tail[:tail.rfind(b"\n") + 1]  # a line still being written is not there yet
            begin = complete.rfind(b"\n", 0, len(complete) - 1) + 1
            if complete and (begin > 0 or start == 0):
                n, row_hash, _ = _parse(self.name, complete[begin:-1])
                return n, row_hash
            if not complete and start == 0:
                return None
            span *= 4

    def rows(self, after: int, limit: int) -> list[tuple[int, str, str]]:
        """Up to `limit` rows numbered above `after`, oldest first: (n, content, hash)."""
        return list(islice(self.rows_after(after), limit))

    def rows_after(self, after: int) -> Iterator[tuple[int, str, str]]:
        if self._legacy:
            with _sqlite(self.path) as db:
                yield from db.execute("SELECT n, content, hash FROM events WHERE n > ? ORDER BY n", (after,))
            return
        self._ends = {}
        offset = self._offset
        while True:
            chunk = os.pread(self._fd, _CHUNK, offset)
            complete = chunk.rfind(b"\n") + 1
            if not complete:
                if len(chunk) == _CHUNK:  # one line longer than a chunk: read more of it
                    chunk = os.pread(self._fd, os.fstat(self._fd).st_size - offset, offset)
                    complete = chunk.rfind(b"\n") + 1
                if not complete:
                    return  # the end, or a line still being written
            start = 0
            while start < complete:
                end = chunk.index(b"\n", start) + 1
                n, row_hash, content = _parse(self.name, chunk[start:end - 1])
                start = end
                if n <= after:  # on the chain already: read past it from now on
                    self._offset = offset + end
                    continue
                self._ends[n] = offset + end
                yield n, content, row_hash
            offset += complete

    def drop(self, upto: int) -> None:
        """The rows up to `upto` are filed: later reads start after them."""
        self._offset = self._ends.get(upto, self._offset)

    def unfiled(self, store) -> int:
        """How many rows are waiting to be filed."""
        return max(0, self.last() - filed_upto(store, self.name))

    def close(self, *, remove: bool) -> None:
        try:
            os.close(self._fd)
        except OSError:  # already closed: the lock is released all the same
            pass
        if remove:
            for suffix in ("", "-wal", "-shm"):  # the log files of a journal from before they were plain files
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()  # releases the flock
        if remove and self._lock is not None:
            Path(f"{self.path}.lock").unlink(missing_ok=True)


def _parse(name: str, line: bytes) -> tuple[int, str, str]:
    """(n, hash, content) of one journal line."""
    try:
        number, row_hash, content = line.split(b"\t", 2)
        return int(number), row_hash.decode(), content.decode()
    except (ValueError, UnicodeDecodeError):
        raise JournalBroken(f"journal {name}: a line cannot be read ({line[:60]!r}...)") from None


def _sqlite(path: Path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(path: Path, *, blocking: bool):
    handle = open(f"{path}.lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.close()
        return None
    return handle


def orphans(directory: Path) -> list[Journal]:
    """The journals in `directory` no writer holds any more, each now locked by the caller."""
    found = []
    for path in journal_paths(directory):
        lock = _lock(path, blocking=False)
        if lock is None:
            continue  # its writer is alive (or another filer adopted it)
        if not path.exists():  # filed and removed between the listing and the lock
            lock.close()
            continue
        found.append(Journal(path, lock))
    return found


def _readers(directory: Path) -> Iterator[Journal]:
    """Each journal in `directory`, opened to read and closed after its turn."""
    for path in journal_paths(directory):
        try:
            journal = Journal(path)
        except OSError:  # removed meanwhile
            continue
        try:
            yield journal
        finally:
            journal.close(remove=False)


def unfiled_events(store) -> int:
    """Read audits journaled and not filed yet, over every journal of `store` (for monitoring)."""
    with store.engine.connect() as conn:
        marks = dict(conn.exec_driver_sql("SELECT journal, upto FROM audit_journal_filed").all())
    return sum(max(0, journal.last() - marks.get(journal.name, 0)) for journal in _readers(directory_of(store)))


def file_journal(store, journal: Journal, limit: int, *, synced: bool = True) -> int:
    """Put up to `limit` of `journal`'s oldest unfiled events on the chain and store them; returns how many.

    The events, their chain links and the journal's mark commit together. Raises JournalBroken if a
    row does not follow the one before it.
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
    journal.drop(upto)
    return filed


def forget(store, journal: Journal) -> None:
    """Remove a fully filed journal's mark (its file is removed with it)."""
    p = _PLACEHOLDER[store.dialect]
    with store.session(write=True) as uow:
        uow.conn.exec_driver_sql(f"DELETE FROM audit_journal_filed WHERE journal = {p}", (journal.name,))


def check_journals(store) -> str | None:
    """The first journal row not filed yet that does not follow the one before it, described; None if all do."""
    for journal in _readers(directory_of(store)):
        with store.engine.connect() as conn:
            _, upto, previous = _mark(conn, store.dialect, journal.name)
        try:
            _follow(journal.name, upto, previous, journal.rows_after(upto))
        except JournalBroken as exc:
            return str(exc)
        except sqlite3.DatabaseError as exc:
            return f"journal {journal.name} cannot be read: {exc}"
    return None
