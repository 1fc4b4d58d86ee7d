"""Group commit of read AuditEvents: every caller returns only once its event is on the chain."""
import threading

import pytest

from ihs.audit import audit_event, verify
from ihs.audit.writer import AuditWriter
from ihs.store.search import find
from tests.auth.security_tables import reset_security_tables


@pytest.fixture
def audited(store):
    reset_security_tables(store)
    return store


def test_concurrent_requests_share_transactions(audited):
    writer = AuditWriter(audited, max_wait=0.005)
    errors = []

    def request(k):
        try:
            for i in range(10):
                writer.write(audit_event("read", user_name=f"user{k}", resource=f"Observation/o{k}-{i}"))
                with audited.session() as uow:  # committed before write() returned
                    assert find(uow, "AuditEvent", [("entity", f"Observation/o{k}-{i}")], limit=1)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = verify(audited)
    assert result.ok and result.checked == 60


def test_a_failed_commit_is_raised_to_every_caller(audited):
    writer = AuditWriter(audited)
    with pytest.raises(Exception):
        writer.write({"resourceType": "AuditEvent", "recorded": "not an instant"})
    writer.write(audit_event("read", user_name="next"))  # the writer keeps working
    assert verify(audited).ok
