"""Group commit of read AuditEvents: every caller returns only once its event is in its process's journal;
the filer puts journaled events on the chain and stores them, exactly once."""
import os
import threading
import time

import pytest
from sqlalchemy import delete, func, insert, select

from ihs.audit import audit_event, verify
from ihs.audit.chain import GENESIS, audit_chain, audit_chain_head
from ihs.audit.filer import JournalFiler
from ihs.audit.journal import Journal, JournalBroken, file_journal, filed_upto, unfiled_events
from ihs.audit.writer import AuditWriter
from ihs.store.search import find
from tests.auth.security_tables import reset_security_tables


_open: list[AuditWriter] = []


def _writer(store, **options) -> AuditWriter:
    """A writer that the test's teardown closes: its threads must not outlive the test's store."""
    writer = AuditWriter(store, **options)
    _open.append(writer)
    return writer


@pytest.fixture
def audited(store):
    reset_security_tables(store)
    yield store
    while _open:
        _open.pop().close()


def _on_chain(store, event_id: str) -> bool:
    with store.engine.connect() as conn:
        return conn.execute(select(audit_chain.c.seq).where(audit_chain.c.res_id == event_id)).first() is not None


def _journaled(writer) -> list[dict]:
    """The events in the writer's journal file not filed yet, read as another process would."""
    import orjson

    reader = Journal(writer._journal.path)
    try:
        return [orjson.loads(c) for _, c, _ in reader.rows_after(filed_upto(writer.store, reader.name))]
    finally:
        reader.close(remove=False)


def _rewrite(writer, change) -> None:
    """Edit the writer's journal file on disk, line by line (`change(lines)` returns the new lines)."""
    path = writer._journal.path
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))


def _end(writer, *, remove: bool) -> None:
    """End a writer as its process would end: its filer stops, its journal is closed (and removed)."""
    if writer in _open:
        _open.remove(writer)
    writer.filer.stop()
    writer._journal.close(remove=remove)


def _journal_files(writer) -> list:
    return sorted(writer.directory.glob("*.journal")) if writer.directory.is_dir() else []


def test_each_caller_returns_with_its_event_committed_and_the_filer_stores_them(audited):
    writer = _writer(audited)
    errors = []

    def request(k):
        try:
            for i in range(10):
                event = audit_event("read", user_name=f"user{k}", resource=f"Observation/o{k}-{i}")
                event["id"] = f"e{k}-{i}"
                writer.write(event, checked=True)
                assert f"e{k}-{i}" in {e["id"] for e in _journaled(writer)}  # committed before write() returned
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert writer.events == 60
    assert verify(audited).ok  # journaled events are checked whether filed yet or not
    writer.flush()
    with audited.session() as uow:
        assert find(uow, "AuditEvent", [("entity", "Observation/o3-7")], limit=1)
    assert _on_chain(audited, "e3-7") and writer.filed == 60 and not _journaled(writer)
    result = verify(audited)
    assert result.ok and result.checked == 60


def test_requests_queued_during_a_commit_share_the_next_one(audited, monkeypatch):
    writer = _writer(audited)
    writer.write(audit_event("read", user_name="warm-up"), checked=True)
    before = writer.commits
    slow_disk = threading.Event()
    append = Journal.append

    def waiting_append(journal, events):
        slow_disk.wait(5)  # the first append waits for the disk
        append(journal, events)

    monkeypatch.setattr(Journal, "append", waiting_append)
    threads = [threading.Thread(target=writer.write, args=(audit_event("read", user_name=f"u{i}"),),
                                kwargs={"checked": True}) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # all eight are queued or waiting on the slow append
    slow_disk.set()
    for t in threads:
        t.join()
    assert writer.events == 9
    assert writer.commits - before <= 2  # the first one's transaction, then everyone queued behind it
    writer.flush()
    assert verify(audited).ok and verify(audited).checked == 9


def test_a_failed_journal_commit_is_raised_to_every_caller_and_a_new_journal_takes_over(audited):
    writer = _writer(audited)
    writer.write(audit_event("read", user_name="first"), checked=True)
    broken = writer._journal
    os.close(broken._fd)  # the journal can no longer be written
    with pytest.raises(OSError):
        writer.write(audit_event("read", user_name="lost"), checked=True)
    writer.write(audit_event("read", user_name="next"), checked=True)  # the writer keeps working, in a new journal
    assert writer._journal is not broken
    writer.flush()  # the first journal, closed and unlocked, is adopted and filed
    with audited.session() as uow:
        names = {s.resource()["agent"][0]["name"] for s in find(uow, "AuditEvent", [], limit=10)}
    assert names == {"first", "next"}
    assert verify(audited).ok


def test_events_wait_in_the_journal_while_they_cannot_be_filed(audited):
    writer = _writer(audited, file_delay=30)
    with audited.engine.begin() as conn:  # the chain has lost its head: filing must fail
        conn.execute(delete(audit_chain_head))
    try:
        writer.write(audit_event("read", user_name="kept"), checked=True)  # the read is answered all the same
        with pytest.raises(RuntimeError, match="no head row"):
            writer.flush()
        assert len(_journaled(writer)) == 1
    finally:
        with audited.engine.begin() as conn:
            conn.execute(insert(audit_chain_head).values(id=1, seq=0, hash=GENESIS))
    writer.flush()
    assert not _journaled(writer) and verify(audited).ok and verify(audited).checked == 1


def test_an_invalid_event_fails_its_caller_only(audited):
    writer = _writer(audited)
    with pytest.raises(Exception):
        writer.write({"resourceType": "AuditEvent", "recorded": "not an instant"})
    writer.write(audit_event("read", user_name="next"), checked=True)
    assert verify(audited).ok and writer.events == 1


def test_a_modified_event_waiting_to_be_filed_is_detected_and_not_filed(audited):
    writer = _writer(audited, file_delay=30)  # the events stay in the journal during the test
    for name in ("first", "second"):
        writer.write(audit_event("read", user_name=name), checked=True)
    _rewrite(writer, lambda lines: [lines[0], lines[1].replace(b'"second"', b'"someone else"')])
    result = verify(audited)
    assert not result.ok and "row 2 was changed" in result.problem
    with pytest.raises(JournalBroken, match="row 2"):
        file_journal(audited, writer._journal, 10)
    with audited.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_chain)).scalar_one() == 0  # nothing filed
    _end(writer, remove=True)  # broken on purpose: no later filer adopts it


def test_a_removed_journal_row_is_detected(audited):
    writer = _writer(audited, file_delay=30)
    for name in ("first", "second", "third"):
        writer.write(audit_event("read", user_name=name), checked=True)
    _rewrite(writer, lambda lines: [lines[0], lines[2]])
    result = verify(audited)
    assert not result.ok and "rows 2..2 are missing" in result.problem
    _end(writer, remove=True)  # broken on purpose: no later filer adopts it


def test_flushed_durability_commits_as_well(audited):
    writer = _writer(audited, durability="flush")
    writer.write(audit_event("read", user_name="careful"), checked=True)
    writer.flush()
    assert verify(audited).ok and verify(audited).checked == 1


def test_an_unknown_durability_is_refused(audited, monkeypatch):
    monkeypatch.setenv("IHS_READ_AUDIT_DURABILITY", "eventually")
    with pytest.raises(ValueError, match="commit' or 'flush"):
        AuditWriter(audited)


def test_the_servers_own_audit_events_are_not_published_on_the_outbox(audited):
    """The chain is the audit trail's feed; an outbox row per AuditEvent would make every read a change."""
    from ihs.audit import record
    from ihs.store.schema import outbox

    writer = _writer(audited)
    writer.write(audit_event("read", user_name="reader", resource="Observation/o1"), checked=True)
    writer.flush()
    with audited.session(write=True) as uow:
        uow.create({"resourceType": "Basic", "code": {"text": "a change"}})
        record(uow, audit_event("create", user_name="writer", resource="Basic/b1"), checked=True)
    with audited.session() as uow:
        assert len(find(uow, "AuditEvent", [], limit=10)) == 2  # both filed and searchable
    with audited.engine.connect() as conn:
        published = conn.execute(select(outbox.c.res_type)).scalars().all()
    assert published == ["Basic"]


def test_two_writers_filing_the_same_chain_store_each_event_once(audited):
    """Each worker process has its own writer, journal and filer; they file onto one chain."""
    writers = [_writer(audited, file_delay=0), _writer(audited, file_delay=0)]

    def requests(writer, k):
        for i in range(40):
            writer.write(audit_event("read", user_name=f"w{k}", resource=f"Observation/o{k}-{i}"), checked=True)

    threads = [threading.Thread(target=requests, args=(w, k)) for k, w in enumerate(writers * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for writer in writers:
        writer.flush()
    with audited.session() as uow:
        filed = find(uow, "AuditEvent", [("_count", "500")], limit=500)
    assert len(filed) == 160 and len({s.id for s in filed}) == 160
    assert verify(audited).ok and verify(audited).checked == 160


def test_a_journal_left_by_an_ended_process_is_filed_and_removed(audited):
    ended = AuditWriter(audited, file_delay=30)
    for i in range(5):
        ended.write(audit_event("read", user_name=f"u{i}"), checked=True)
    left = ended._journal
    _end(ended, remove=False)  # the process ended: its lock is gone, its events are not filed
    writer = _writer(audited)
    writer.flush()
    assert not left.path.exists() and not _journal_files(writer)
    assert verify(audited).ok and verify(audited).checked == 5


def test_a_full_journal_is_replaced_and_filed_to_its_end(audited):
    writer = _writer(audited, file_delay=30, rotate_bytes=1)  # every append fills a journal
    for i in range(5):
        writer.write(audit_event("read", user_name=f"u{i}"), checked=True)
    assert len(_journal_files(writer)) == 5 and writer._journal is None  # each waits for a filer to adopt it
    assert unfiled_events(audited) == 5
    writer.flush()
    assert not _journal_files(writer) and unfiled_events(audited) == 0
    assert verify(audited).ok and verify(audited).checked == 5


def test_rows_whose_filing_committed_are_never_filed_twice(audited, monkeypatch):
    writer = _writer(audited, file_delay=30)
    for i in range(4):
        writer.write(audit_event("read", user_name=f"u{i}"), checked=True)
    monkeypatch.setattr(Journal, "drop", lambda self, upto: None)  # a crash right after the filing commit
    assert file_journal(audited, writer._journal, 10) == 4
    monkeypatch.undo()
    assert file_journal(audited, writer._journal, 10) == 0  # the store's mark says they are filed
    assert not _journaled(writer)
    writer.write(audit_event("read", user_name="later"), checked=True)  # links on from the filed rows
    writer.flush()
    assert verify(audited).ok and verify(audited).checked == 5


def test_reads_wait_for_the_filer_once_the_backlog_is_full(audited):
    writer = _writer(audited, file_delay=0.5, max_backlog=3)
    for i in range(3):
        writer.write(audit_event("read", user_name=f"u{i}"), checked=True)
    started = time.monotonic()
    writer.write(audit_event("read", user_name="waits"), checked=True)
    assert time.monotonic() - started >= 0.3  # until the filer's round after its delay
    assert writer.filed >= 3
    writer.flush()
    assert verify(audited).checked == 4


def test_closing_files_everything_and_removes_the_journal(audited):
    writer = AuditWriter(audited, file_delay=30)
    for i in range(3):
        writer.write(audit_event("read", user_name=f"u{i}"), checked=True)
    writer.close()
    assert not _journal_files(writer)
    assert verify(audited).ok and verify(audited).checked == 3


def test_the_supervising_process_files_every_workers_journal(audited):
    """Under `ihs serve --workers N` the workers only journal; one filer files all their journals."""
    workers = [_writer(audited, supervised_filing=True) for _ in range(2)]
    for k, writer in enumerate(workers):
        for i in range(5):
            writer.write(audit_event("read", user_name=f"w{k}-{i}"), checked=True)
        assert writer.filer._thread is None  # a supervised writer files nothing by itself
    assert unfiled_events(audited) == 10
    supervisor = JournalFiler(audited, workers[0].directory, every_journal=True)
    try:
        assert supervisor.file_round() == 10
        assert unfiled_events(audited) == 0
        workers[1].write(audit_event("read", user_name="later"), checked=True)
        assert supervisor.file_round() == 1  # the live journal is read again where it was left
    finally:
        supervisor.stop()
    assert verify(audited).ok and verify(audited).checked == 11


def test_a_supervised_writer_waits_for_the_supervisor_once_its_backlog_is_full(audited):
    writer = _writer(audited, supervised_filing=True, max_backlog=3)
    for i in range(3):
        writer.write(audit_event("read", user_name=f"u{i}"), checked=True)
    supervisor = JournalFiler(audited, writer.directory, every_journal=True)
    timer = threading.Timer(0.3, supervisor.file_round)
    timer.start()
    started = time.monotonic()
    writer.write(audit_event("read", user_name="waits"), checked=True)
    assert time.monotonic() - started >= 0.25
    timer.join()
    supervisor.stop()
    writer.flush()
    assert verify(audited).checked == 4


def test_a_journal_written_as_a_sqlite_file_is_still_filed(audited):
    """Journals were SQLite files before they were plain files; one left by a killed process is filed all the same."""
    import sqlite3

    import orjson

    from ihs.audit.journal import directory_of, link

    directory = directory_of(audited)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "old-host-1-0000.journal"
    previous, rows = GENESIS, []
    for n in (1, 2):
        content = orjson.dumps(audit_event("read", user_name=f"old{n}")).decode()
        previous = link(previous, content)
        rows.append((n, content, previous))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (n INTEGER PRIMARY KEY, content TEXT NOT NULL, hash TEXT NOT NULL)")
        db.executemany("INSERT INTO events VALUES (?, ?, ?)", rows)
    db.close()
    assert unfiled_events(audited) == 2 and verify(audited).ok
    writer = _writer(audited)
    writer.flush()
    assert not path.exists() and unfiled_events(audited) == 0
    with audited.session() as uow:
        names = {s.resource()["agent"][0]["name"] for s in find(uow, "AuditEvent", [], limit=10)}
    assert names == {"old1", "old2"} and verify(audited).checked == 2
