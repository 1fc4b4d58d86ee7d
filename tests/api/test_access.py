"""Every request is authenticated, decided by the access policy and written to the audit trail."""
from __future__ import annotations

from click.testing import CliRunner

from ihs.api.operations.smart import authority_of
from ihs.api.security import audit_writer
from ihs.cli import main


def _patient_token(client, patient_id: str) -> str:
    """A token as the SMART login would issue it to the patient `patient_id` (patient/*.rs, launch/patient)."""
    class _App:  # authority_of reads the app's state only
        app = client.app
    token, _ = authority_of(_App()).access_token(
        subject="resident", client_id="portal", scope="patient/*.rs launch/patient", roles=("patient",),
        fhir_user=f"Patient/{patient_id}", patient=patient_id)
    return token


def _two_patients(client):
    return [client.post("/Patient", json={"resourceType": "Patient", "gender": g}).json()["id"]
            for g in ("female", "male")]


def test_requests_without_a_valid_token_are_401_and_change_nothing(client):
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer not-a-token"}):
        response = client.post("/Patient", json={"resourceType": "Patient"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"
        assert "Bearer" in response.headers["www-authenticate"]
    assert client.get("/Patient/_history").json()["total"] == 0


def test_public_endpoints_need_no_token(client):
    for path in ("/metadata", "/.well-known/smart-configuration", "/healthz"):
        assert client.get(path, headers={"Authorization": ""}).status_code == 200, path


def test_a_patient_reads_their_own_record_and_not_anothers(client):
    mine, other = _two_patients(client)
    headers = {"Authorization": f"Bearer {_patient_token(client, mine)}"}
    assert client.get(f"/Patient/{mine}", headers=headers).status_code == 200
    denied = client.get(f"/Patient/{other}", headers=headers)
    assert denied.status_code == 403 and denied.json()["resourceType"] == "OperationOutcome"


def test_a_read_only_scope_cannot_write(client):
    mine, _ = _two_patients(client)
    headers = {"Authorization": f"Bearer {_patient_token(client, mine)}"}
    response = client.put(f"/Patient/{mine}", json={"resourceType": "Patient", "id": mine, "gender": "other"},
                          headers=headers)
    assert response.status_code == 403
    assert client.get(f"/Patient/{mine}").json()["gender"] == "female"


def test_a_patients_search_answers_only_their_own_record(client):
    mine, other = _two_patients(client)
    headers = {"Authorization": f"Bearer {_patient_token(client, mine)}"}
    found = client.get("/Patient?_total=accurate", headers=headers)
    assert found.status_code == 200
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [mine] and found.json()["total"] == 1
    assert "entry" not in client.get(f"/Patient?_id={other}", headers=headers).json()


def test_audit_events_record_reads_and_writes_and_cannot_be_changed(client, store):
    created = client.post("/Patient", json={"resourceType": "Patient"}).json()
    client.get(f"/Patient/{created['id']}")
    audit_writer(store).flush()  # read audits are committed on the chain, then filed as resources
    events = [e["resource"] for e in client.get("/AuditEvent/_history?_count=100").json()["entry"]]
    actions = sorted(e["action"] for e in events)
    assert actions.count("C") >= 1 and actions.count("R") >= 1
    audit_id = events[0]["id"]
    assert client.delete(f"/AuditEvent/{audit_id}").status_code == 405
    assert client.put(f"/AuditEvent/{audit_id}", json=events[0]).status_code == 405


def test_cli_registers_a_client_issues_its_token_and_verifies_the_audit_chain(tmp_path):
    database = f"sqlite:///{tmp_path}/ihs.db"
    runner = CliRunner()
    added = runner.invoke(main, ["client", "add", "county-his", "--scope", "system/*.rs", "--database", database])
    assert added.exit_code == 0 and "private key" in added.output
    issued = runner.invoke(main, ["token", "--client", "county-his", "--database", database])
    assert issued.exit_code == 0 and issued.output.count(".") == 2
    wider = runner.invoke(main, ["token", "--client", "county-his", "--scope", "system/*.cruds",
                                 "--database", database])
    assert wider.exit_code != 0
    verified = runner.invoke(main, ["audit", "verify", "--database", database])
    assert verified.exit_code == 0 and "intact" in verified.output


def test_the_unsecured_benchmark_mode_serves_on_loopback_only(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--unsecured-benchmark", "--host", "0.0.0.0",
                                       "--database", f"sqlite:///{tmp_path}/ihs.db"])
    assert result.exit_code != 0 and "127.0.0.1 only" in result.output


def test_a_read_is_answered_only_once_its_audit_event_is_stored(client, store):
    from sqlalchemy import select

    from ihs.audit.chain import audit_chain
    from ihs.audit.journal import unfiled_events

    patient = client.post("/Patient", json={"resourceType": "Patient"}).json()
    writer = audit_writer(store)
    writer.file_delay = 30  # the read's event stays in the journal for the test
    assert client.get(f"/Patient/{patient['id']}").status_code == 200
    with store.engine.connect() as conn:
        links = conn.execute(select(audit_chain.c.seq)).all()
    assert len(links) + unfiled_events(store) == 2  # the create's event (on the chain) and the read's (in the journal)


def test_a_read_whose_audit_event_cannot_be_stored_is_not_answered(client, store, monkeypatch):
    from ihs.audit import verify
    from ihs.audit.journal import Journal

    patient = client.post("/Patient", json={"resourceType": "Patient"}).json()

    def disk_full(self, events):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Journal, "append", disk_full)
    for path in (f"/Patient/{patient['id']}", "/Patient?gender=female"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert "audit trail" in response.json()["issue"][0]["diagnostics"]
    monkeypatch.undo()
    assert client.get(f"/Patient/{patient['id']}").status_code == 200
    audit_writer(store).flush()
    assert verify(store).ok and verify(store).checked == 2


def test_audit_events_are_found_by_patient_and_unindexed_parameters_are_refused(client, store):
    patient = client.post("/Patient", json={"resourceType": "Patient"}).json()
    client.get(f"/Patient/{patient['id']}")
    audit_writer(store).flush()
    found = client.get(f"/AuditEvent?patient=Patient/{patient['id']}&action=R").json()
    assert found["total"] == 1 and found["entry"][0]["resource"]["subtype"][0]["code"] == "read"
    refused = client.get("/AuditEvent?address=127.0.0.1")
    assert refused.status_code == 400 and "address" in refused.json()["issue"][0]["diagnostics"]
