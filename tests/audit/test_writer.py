"""Group commit of read AuditEvents: every caller returns only once its event is committed on the chain."""
import threading
import time

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from ihs.audit import audit_event, verify
from ihs.audit.chain import GENESIS, audit_chain, audit_chain_head, audit_pending
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


def test_each_caller_returns_with_its_event_committed_and_the_filer_stores_them(audited):
    writer = _writer(audited)
    errors = []

    def request(k):
        try:
            for i in range(10):
                event = audit_event("read", user_name=f"user{k}", resource=f"Observation/o{k}-{i}")
                event["id"] = f"e{k}-{i}"
                writer.write(event, checked=True)
                assert _on_chain(audited, f"e{k}-{i}")  # committed before write() returned
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert writer.events == 60
    result = verify(audited)  # appended events are verified whether filed yet or not
    assert result.ok and result.checked == 60
    writer.flush()
    with audited.session() as uow:
        assert find(uow, "AuditEvent", [("entity", "Observation/o3-7")], limit=1)
    with audited.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_pending)).scalar_one() == 0
    assert verify(audited).ok


def _hold_the_chain(store):
    """A transaction on another connection holding what an append needs (the write lock, the head row)."""
    conn = store.engine.connect()
    if store.dialect == "sqlite":
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")
    else:
        conn.execute(text("SELECT seq FROM audit_chain_head WHERE id = 1 FOR UPDATE"))
    return conn


def _release(store, holder) -> None:
    if store.dialect == "sqlite":
        holder.connection.driver_connection.execute("ROLLBACK")
    else:
        holder.rollback()
    holder.close()


def test_requests_queued_during_a_commit_share_the_next_one(audited):
    writer = _writer(audited)
    writer.write(audit_event("read", user_name="warm-up"), checked=True)
    before = writer.commits
    holder = _hold_the_chain(audited)
    threads = [threading.Thread(target=writer.write, args=(audit_event("read", user_name=f"u{i}"),),
                                kwargs={"checked": True}) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # all eight are queued or waiting on the held chain
    _release(audited, holder)
    for t in threads:
        t.join()
    assert writer.events == 9
    assert writer.commits - before <= 2  # the first one's transaction, then everyone queued behind it
    assert verify(audited).ok


def test_a_failed_commit_is_raised_to_every_caller_and_nothing_is_stored(audited):
    writer = _writer(audited)
    with audited.engine.begin() as conn:  # the chain has lost its head: appending must fail
        conn.execute(delete(audit_chain_head))
    try:
        with pytest.raises(RuntimeError, match="no head row"):
            writer.write(audit_event("read", user_name="lost"), checked=True)
    finally:
        with audited.engine.begin() as conn:
            conn.execute(insert(audit_chain_head).values(id=1, seq=0, hash=GENESIS))
    with audited.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_chain)).scalar_one() == 0
    writer.write(audit_event("read", user_name="next"), checked=True)  # the writer keeps working
    assert verify(audited).ok


def test_an_invalid_event_fails_its_caller_only(audited):
    writer = _writer(audited)
    with pytest.raises(Exception):
        writer.write({"resourceType": "AuditEvent", "recorded": "not an instant"})
    writer.write(audit_event("read", user_name="next"), checked=True)
    assert verify(audited).ok and writer.events == 1


def test_a_modified_event_waiting_to_be_filed_is_detected(audited):
    writer = _writer(audited, file_delay=30)  # the events stay in audit_pending during the test
    for name in ("first", "second"):
        writer.write(audit_event("read", user_name=name), checked=True)
    with audited.engine.begin() as conn:
        content = conn.execute(select(audit_pending.c.content).where(audit_pending.c.seq == 2)).scalar_one()
        conn.execute(update(audit_pending).where(audit_pending.c.seq == 2)
                     .values(content=content.replace('"second"', '"someone else"')))
    result = verify(audited)
    assert not result.ok and result.sequence == 2 and "modified" in result.problem


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
    """Each worker process has its own writer and filer; events one filer prepared and another filed
    meanwhile are skipped, never stored twice."""
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
    with audited.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_pending)).scalar_one() == 0
    with audited.session() as uow:
        filed = find(uow, "AuditEvent", [("_count", "500")], limit=500)
    assert len(filed) == 160 and len({s.id for s in filed}) == 160
    assert verify(audited).ok and verify(audited).checked == 160
