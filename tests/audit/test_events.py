"""AuditEvents in the IHE BALP shape: valid R4, who/what/when/where/outcome/purpose."""
import base64

import pytest

from ihs.audit import audit_event, from_principal, outcome_of, record
from ihs.audit.events import ACTIONS
from ihs.auth.principal import Principal
from ihs.fhir.validation import validate
from ihs.store.search import find
from tests.auth.security_tables import reset_security_tables


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_is_a_valid_audit_event(action):
    event = audit_event(action, user="Practitioner/drA", user_name="dr", client_id="app", roles=("practitioner",),
                        organizations=("Organization/hA",), address="10.1.2.3", server="http://ihs.test",
                        purpose=("TREAT",), resource="Observation/o1", patients=("p1",), query="code=8867-4")
    validate(event)
    assert event["type"]["code"] and event["action"] in "CRUDE" and event["recorded"].endswith("Z")


def test_who_what_where_and_why():
    event = audit_event("read", user="Practitioner/drA", user_name="dr", client_id="app", address="10.1.2.3",
                        server="http://ihs.test", resource="Observation/o1", patients=("p1",), purpose=("BTG",))
    user = event["agent"][0]
    assert user["requestor"] and user["who"]["reference"] == "Practitioner/drA" and user["altId"] == "dr"
    assert user["network"] == {"address": "10.1.2.3", "type": "2"}
    assert user["purposeOfUse"][0]["coding"][0]["code"] == "BTG"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "BTG"
    app = event["agent"][1]
    assert app["who"]["identifier"]["value"] == "app" and not app["requestor"]
    whats = [e["what"]["reference"] for e in event["entity"]]
    assert whats == ["Patient/p1", "Observation/o1"]
    assert event["subtype"][0]["code"] == "read" and event["action"] == "R"


def test_search_records_its_query():
    event = audit_event("search", user_name="dr", query="subject=Patient/p1&code=8867-4", interaction="search-type")
    query = [e for e in event["entity"] if e["role"]["code"] == "24"][0]
    assert base64.b64decode(query["query"]).decode() == "subject=Patient/p1&code=8867-4"
    assert event["action"] == "E"


def test_failed_login():
    event = audit_event("login-failed", outcome="4", outcome_desc="wrong username or password", user_name="mallory",
                        address="203.0.113.9")
    assert event["type"]["code"] == "110114" and event["subtype"][0]["code"] == "110122"
    assert event["outcome"] == "4" and event["outcomeDesc"] == "wrong username or password"


def test_break_glass_event_is_a_security_alert():
    assert audit_event("break-glass", user_name="dr", purpose=("BTG",))["type"]["code"] == "110113"


def test_from_principal_carries_break_glass_when_the_access_used_it():
    doctor = Principal("dr", frozenset({"practitioner"}), client_id="app", fhir_user="Practitioner/drA",
                       organizations=("Organization/hA",)).claiming_break_glass("emergency")
    fields = from_principal(doctor, break_glass=True)
    assert fields["purpose"] == ("BTG",) and fields["user"] == "Practitioner/drA" and fields["client_id"] == "app"
    event = audit_event("read", **fields)
    assert event["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "BTG"


def test_a_claim_the_access_did_not_need_is_not_a_purpose_of_use():
    doctor = Principal("dr", frozenset({"practitioner"})).claiming_break_glass("emergency")
    event = audit_event("search", **from_principal(doctor))
    assert from_principal(doctor)["purpose"] == () and "purposeOfEvent" not in event
    assert "purposeOfUse" not in event["agent"][0]


def test_outcome_of_status():
    assert [outcome_of(s) for s in (200, 201, 401, 403, 404, 500)] == ["0", "0", "4", "4", "4", "8"]


def test_unknown_action():
    with pytest.raises(ValueError):
        audit_event("peek")


def test_a_patient_finds_who_accessed_their_record(store):
    reset_security_tables(store)
    with store.session(write=True) as uow:
        record(uow, audit_event("read", user="Practitioner/drA", resource="Observation/o1", patients=("p1",)))
        record(uow, audit_event("read", user="Practitioner/drB", resource="Observation/o9", patients=("p9",)))
    with store.session() as uow:
        mine = [s.resource() for s in find(uow, "AuditEvent", [("patient", "Patient/p1")])]
    assert [e["agent"][0]["who"]["reference"] for e in mine] == ["Practitioner/drA"]


def test_recorded_is_the_current_instant_in_utc_with_microseconds():
    import re
    from datetime import datetime, timezone

    from ihs.audit.events import now_instant

    for _ in range(3):
        before = datetime.now(timezone.utc)
        recorded = audit_event("read")["recorded"]
        after = datetime.now(timezone.utc)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", recorded)
        assert before <= datetime.strptime(recorded, "%Y-%m-%dT%H:%M:%S.%f%z") <= after
    assert now_instant() <= now_instant()
