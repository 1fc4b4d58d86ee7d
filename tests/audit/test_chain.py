"""The AuditEvent hash chain: appends in the caller's transaction, and every kind of tampering detected."""
import threading

import orjson
import pytest
from sqlalchemy import delete, select, update

from ihs.audit import audit_event, record, verify
from ihs.audit.chain import audit_chain, audit_chain_head, chain_fields, event_hash
from ihs.store.schema import resource_history, resources
from tests.auth.security_tables import reset_security_tables


@pytest.fixture
def audited(store):
    reset_security_tables(store)
    return store


def _append(store, n, start=0) -> list[str]:
    ids = []
    with store.session(write=True) as uow:
        for i in range(start, start + n):
            event = audit_event("read", user="Practitioner/drA", user_name="dr", client_id="app",
                                resource=f"Observation/o{i}", patients=(f"p{i}",), address="10.0.0.1",
                                server="http://ihs.test")
            ids.append(record(uow, event).id)
    return ids


def _content(store, event_id) -> dict:
    with store.engine.connect() as conn:
        text = conn.execute(select(resources.c.content).where(resources.c.res_type == "AuditEvent",
                                                               resources.c.res_id == event_id)).scalar_one()
    return orjson.loads(text) if isinstance(text, str) else text


def _write_content(store, event_id, content: dict) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(resources).where(resources.c.res_type == "AuditEvent", resources.c.res_id == event_id)
                     .values(content=orjson.dumps(content).decode()))


def test_an_untouched_chain_verifies(audited):
    ids = _append(audited, 5)
    result = verify(audited)
    assert result.ok and result.checked == 5 and result.head_sequence == 5
    assert "intact" in result.report()
    last = _content(audited, ids[-1])
    assert chain_fields(last)["hash"] == result.head_hash == event_hash(last)


def test_each_event_links_to_its_predecessor(audited):
    ids = _append(audited, 3)
    fields = [chain_fields(_content(audited, i)) for i in ids]
    assert [f["sequence"] for f in fields] == [1, 2, 3]
    assert fields[0]["previous"] == "0" * 64
    assert fields[1]["previous"] == fields[0]["hash"] and fields[2]["previous"] == fields[1]["hash"]


def test_an_empty_chain_verifies(audited):
    assert verify(audited).ok


def test_modified_event_is_named(audited):
    ids = _append(audited, 5)
    tampered = _content(audited, ids[2])
    tampered["agent"][0]["who"]["reference"] = "Practitioner/someone-else"
    _write_content(audited, ids[2], tampered)
    result = verify(audited)
    assert not result.ok and result.event_id == ids[2] and result.sequence == 3
    assert "modified" in result.problem


def test_modified_event_with_recomputed_hash_breaks_the_next_link(audited):
    ids = _append(audited, 5)
    tampered = _content(audited, ids[1])
    tampered["outcome"] = "4"
    for item in tampered["extension"][-1]["extension"]:
        if item["url"] == "hash":
            item["valueString"] = event_hash(tampered)
    _write_content(audited, ids[1], tampered)
    result = verify(audited)
    assert not result.ok and result.sequence == 2  # the chain index still holds the original hash


def test_deleted_event_is_named(audited):
    ids = _append(audited, 5)
    with audited.engine.begin() as conn:
        conn.execute(delete(resources).where(resources.c.res_type == "AuditEvent", resources.c.res_id == ids[3]))
    result = verify(audited)
    assert not result.ok and result.event_id == ids[3] and "deleted" in result.problem


def test_deleted_event_and_its_chain_row_are_found_by_the_gap(audited):
    ids = _append(audited, 5)
    with audited.engine.begin() as conn:
        conn.execute(delete(resources).where(resources.c.res_type == "AuditEvent", resources.c.res_id == ids[1]))
        conn.execute(delete(audit_chain).where(audit_chain.c.seq == 2))
    result = verify(audited)
    assert not result.ok and result.event_id == ids[2] and "2..2 before it were deleted" in result.problem


def test_swapped_rows_are_named(audited):
    ids = _append(audited, 5)
    second, third = _content(audited, ids[1]), _content(audited, ids[2])
    _write_content(audited, ids[1], third)
    _write_content(audited, ids[2], second)
    result = verify(audited)
    assert not result.ok and result.event_id == ids[1] and "swapped" in result.problem


def test_reordered_chain_is_named(audited):
    ids = _append(audited, 5)
    with audited.engine.begin() as conn:
        conn.execute(update(audit_chain).where(audit_chain.c.seq == 2).values(seq=-1))
        conn.execute(update(audit_chain).where(audit_chain.c.seq == 3).values(seq=2))
        conn.execute(update(audit_chain).where(audit_chain.c.seq == -1).values(seq=3))
    result = verify(audited)
    assert not result.ok and result.sequence == 2 and result.event_id == ids[2]
    assert "re-ordered" in result.problem


def test_truncated_chain_is_detected(audited):
    ids = _append(audited, 5)
    with audited.engine.begin() as conn:
        conn.execute(delete(resources).where(resources.c.res_type == "AuditEvent", resources.c.res_id == ids[4]))
        conn.execute(delete(audit_chain).where(audit_chain.c.seq == 5))
    result = verify(audited)
    assert not result.ok and "newest events were deleted" in result.problem


def test_rewritten_chain_is_caught_by_a_recorded_head(audited):
    _append(audited, 3)
    recorded_head = verify(audited).head_hash
    with audited.engine.begin() as conn:
        conn.execute(delete(resources).where(resources.c.res_type == "AuditEvent"))
        conn.execute(delete(resource_history).where(resource_history.c.res_type == "AuditEvent"))
        conn.execute(delete(audit_chain))
        conn.execute(update(audit_chain_head).values(seq=0, hash="0" * 64))
    _append(audited, 3, start=100)
    assert verify(audited).ok  # self-consistent ...
    result = verify(audited, expected_head=recorded_head)
    assert not result.ok and "rewritten" in result.problem  # ... but not the chain the operator recorded


def test_events_written_around_the_chain_are_reported(audited):
    _append(audited, 2)
    with audited.session(write=True) as uow:
        uow.create(audit_event("read", user_name="intruder", server="http://ihs.test"))
    result = verify(audited)
    assert not result.ok and "not on the chain" in result.problem


def test_the_event_commits_with_the_change_or_not_at_all(audited):
    _append(audited, 2)
    with pytest.raises(RuntimeError):
        with audited.session(write=True) as uow:
            uow.create({"resourceType": "Patient", "id": "p-new"})
            record(uow, audit_event("create", user_name="dr", resource="Patient/p-new"))
            raise RuntimeError("the change failed")
    with audited.session() as uow:
        assert uow.current("Patient", "p-new") is None
    result = verify(audited)
    assert result.ok and result.checked == 2


def test_record_needs_a_write_unit_of_work(audited):
    with audited.session() as uow, pytest.raises(ValueError, match="write"):
        record(uow, audit_event("read", user_name="dr"))


def test_concurrent_appends_keep_one_chain(audited):
    errors = []

    def worker(k):
        try:
            for i in range(8):
                _append(audited, 1, start=k * 100 + i)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = verify(audited)
    assert result.ok and result.checked == 32
