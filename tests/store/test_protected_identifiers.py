"""Resident ID numbers are encrypted at rest, hashed in the index, and plain to every reader."""
from __future__ import annotations

import base64
import os

import orjson
import pytest
from sqlalchemy import text

from ihs.store.identifier_key import IdentifierKeyError
from ihs.store.protected import ENCRYPTED_VALUE, RESIDENT_ID, IdentifierProtection
from ihs.store.store import Store
from tests.store.test_search_reindex import restore_registry  # noqa: F401 (a fixture)

NUMBER = "330106198807221145"
MRN = "https://ihs.example.org/fhir/sid/mrn/h1"
ID_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"


def resident(number: str = NUMBER, family: str = "Wang") -> dict:
    return {"resourceType": "Patient", "gender": "female", "birthDate": "1988-07-22",
            "name": [{"family": family, "given": ["Fang"]}],
            "identifier": [{"use": "official", "type": {"coding": [{"system": ID_TYPE, "code": "NNCHN"}]},
                            "system": RESIDENT_ID, "value": number},
                           {"system": MRN, "value": "MRN-0042"}]}


def values_of(resource: dict, system: str = RESIDENT_ID) -> list[str]:
    return [i.get("value") for i in resource.get("identifier", []) if i.get("system") == system]


def database_text(store: Store) -> list[str]:
    """Every row of every table in the database, as text."""
    found = []
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            tables = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars().all()
            for table in tables:
                for row in conn.exec_driver_sql(f'SELECT * FROM "{table}"'):
                    found.append(" ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row))
        else:
            tables = conn.execute(text("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_schema = current_schema()")).scalars().all()
            for table in tables:
                found.extend(conn.exec_driver_sql(f'SELECT t::text FROM "{table}" AS t').scalars().all())
    return found


def flush_audit(store: Store) -> None:
    from ihs.api.security import audit_writer

    audit_writer(store).flush()


def url_of(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


# -- at rest ---------------------------------------------------------------------------------------

def test_the_number_appears_nowhere_in_the_database(client, store):
    created = client.post("/Patient", json=resident()).json()
    updated = dict(created, gender="other")
    assert client.put(f"/Patient/{created['id']}", json=updated).status_code == 200  # version 1 moves to history
    assert client.get("/Patient", params={"identifier": f"{RESIDENT_ID}|{NUMBER}"}).json()["total"] == 1
    assert client.get("/Patient", params={"identifier": NUMBER}).json()["total"] == 1
    flush_audit(store)

    rows = database_text(store)
    assert rows and not [row for row in rows if NUMBER in row]
    assert any("MRN-0042" in row for row in rows)  # identifiers of other systems stay plain
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT content FROM resource_history WHERE content IS NOT NULL "
                                      "AND res_type = 'Patient'").scalars().all()
        tokens = conn.exec_driver_sql("SELECT param, code FROM idx_token WHERE system = "
                                      f"'{RESIDENT_ID}'").all()
    assert len(stored) == 1 and ENCRYPTED_VALUE in str(stored[0])
    assert tokens and all(code.startswith("hmac:") for _, code in tokens)


def test_the_sealed_form_is_an_identifier_without_value_but_with_its_extension(store):
    with store.session(write=True) as uow:
        stored = uow.create(resident())
    with store.engine.connect() as conn:
        raw = conn.exec_driver_sql(f"SELECT content FROM resources WHERE res_id = '{stored.id}'").scalar_one()
    raw = raw if isinstance(raw, dict) else orjson.loads(raw)
    sealed, mrn = raw["identifier"]
    assert "value" not in sealed and sealed["system"] == RESIDENT_ID and sealed["use"] == "official"
    [extension] = sealed["_value"]["extension"]
    assert extension["url"] == ENCRYPTED_VALUE
    assert len(base64.b64decode(extension["valueBase64Binary"])) == 12 + len(NUMBER) + 16  # nonce, text, tag
    assert mrn == {"system": MRN, "value": "MRN-0042"}


def test_the_same_number_is_sealed_differently_each_time(store):
    with store.session(write=True) as uow:
        a, b = uow.create(resident()), uow.create(resident())
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT content FROM resources WHERE res_type = 'Patient'").scalars().all()
    sealed = {orjson.dumps((r if isinstance(r, dict) else orjson.loads(r))["identifier"][0]) for r in rows}
    assert len(sealed) == 2  # a fresh nonce per value: equal numbers are not visible as equal ciphertext
    with store.session() as uow:
        assert values_of(uow.current("Patient", a.id).resource()) == values_of(uow.current("Patient", b.id).resource())


def test_a_client_cannot_send_the_servers_encryption_extension(client):
    forged = resident()
    forged["identifier"][0] = {"system": RESIDENT_ID,
                               "_value": {"extension": [{"url": ENCRYPTED_VALUE, "valueBase64Binary": "AAAA"}]}}
    response = client.post("/Patient", json=forged)
    assert response.status_code == 400
    assert ENCRYPTED_VALUE in response.json()["issue"][0]["diagnostics"]


# -- in use ----------------------------------------------------------------------------------------

def test_read_vread_history_and_search_give_the_plain_number(client):
    created = client.post("/Patient", json=resident())
    assert created.status_code == 201 and values_of(created.json()) == [NUMBER]
    patient = created.json()
    client.put(f"/Patient/{patient['id']}", json=dict(patient, gender="other"))

    assert values_of(client.get(f"/Patient/{patient['id']}").json()) == [NUMBER]
    assert values_of(client.get(f"/Patient/{patient['id']}/_history/1").json()) == [NUMBER]
    history = client.get(f"/Patient/{patient['id']}/_history").json()
    assert [values_of(e["resource"]) for e in history["entry"]] == [[NUMBER], [NUMBER]]
    for query in (f"{RESIDENT_ID}|{NUMBER}", NUMBER):
        found = client.get("/Patient", params={"identifier": query}).json()
        assert [values_of(e["resource"]) for e in found["entry"]] == [[NUMBER]], query
    of_type = client.get("/Patient", params={"identifier:of-type": f"{ID_TYPE}|NNCHN|{NUMBER}"}).json()
    assert of_type["total"] == 1
    assert client.get("/Patient", params={"identifier": f"{RESIDENT_ID}|330106198807221146"}).json()["total"] == 0
    assert client.get("/Patient", params={"identifier": f"{MRN}|MRN-0042"}).json()["total"] == 1


def test_the_identifier_comes_back_as_written(store):
    written = resident()
    written["identifier"][0] = {"system": RESIDENT_ID, "value": NUMBER, "period": {"start": "2005-01-01"}}
    extended = resident("330106198807221161")
    extended["identifier"][0]["_value"] = {"extension": [{"url": "http://example.org/checked", "valueBoolean": True}]}
    with store.session(write=True) as uow:
        stored, stored_extended = uow.create(written), uow.create(extended)
    with store.session() as uow:
        read, read_extended = uow.current("Patient", stored.id), uow.current("Patient", stored_extended.id)
    assert read.content == stored.content  # the value in its place: the same text
    assert read_extended.resource() == stored_extended.resource()  # the value's own extensions kept


def test_a_reference_by_resident_id_is_sealed_and_searchable(client, store):
    observation = {"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                   "subject": {"identifier": {"system": RESIDENT_ID, "value": NUMBER}}}
    created = client.post("/Observation", json=observation).json()
    assert created["subject"]["identifier"]["value"] == NUMBER
    found = client.get("/Observation", params={"subject:identifier": f"{RESIDENT_ID}|{NUMBER}"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [created["id"]]
    flush_audit(store)
    assert not [row for row in database_text(store) if NUMBER in row]


def test_conditional_create_and_update_by_resident_id(client):
    condition = f"identifier={RESIDENT_ID}|{NUMBER}"
    first = client.post("/Patient", json=resident(), headers={"If-None-Exist": condition})
    again = client.post("/Patient", json=resident(), headers={"If-None-Exist": condition})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    updated = client.put(f"/Patient?{condition}", json=resident(family="Wong"))
    assert updated.status_code == 200 and updated.json()["id"] == first.json()["id"]
    assert updated.json()["name"][0]["family"] == "Wong" and values_of(updated.json()) == [NUMBER]


def test_mpi_match_on_the_resident_id(client, store):
    from ihs.mpi.index import forget

    forget(store)  # the index of an earlier test's store would not know this one's patients
    stored = client.post("/Patient", json=resident()).json()
    probe = resident(family="Wong")
    response = client.post("/Patient/$match", json={"resourceType": "Parameters",
                                                    "parameter": [{"name": "resource", "resource": probe}]})
    assert response.status_code == 200, response.text
    entries = response.json().get("entry", [])
    assert entries and entries[0]["resource"]["id"] == stored["id"]
    assert values_of(entries[0]["resource"]) == [NUMBER]


def test_everything_and_bulk_export_give_the_plain_number(client, store, tmp_path):
    from ihs.analytics.bulk import ExportRequest, export

    patient = client.post("/Patient", json=resident()).json()
    everything = client.get(f"/Patient/{patient['id']}/$everything").json()
    assert [values_of(e["resource"]) for e in everything["entry"] if e["resource"]["resourceType"] == "Patient"] \
        == [[NUMBER]]

    result = export(store, ExportRequest(types=["Patient"]), tmp_path / "plain")
    [line] = result.files[0].path.read_text().splitlines()
    assert values_of(orjson.loads(line)) == [NUMBER] and ENCRYPTED_VALUE not in line

    result = export(store, ExportRequest(types=["Patient"], deidentify=True), tmp_path / "deidentified",
                    key=os.urandom(32))
    [line] = result.files[0].path.read_text().splitlines()
    assert NUMBER not in line and ENCRYPTED_VALUE not in line and "identifier" not in orjson.loads(line)


def test_sql_on_fhir_views_see_the_plain_number(store):
    from ihs.analytics.run import view_resources, view_rows
    from ihs.analytics.viewdef import compile_view

    with store.session(write=True) as uow:
        uow.create(resident())
    view = compile_view({"resourceType": "ViewDefinition", "resource": "Patient", "status": "active",
                         "select": [{"column": [{"name": "resident_id",
                                                 "path": f"identifier.where(system = '{RESIDENT_ID}').value"}]}]})
    assert list(view_rows(view, view_resources(store, view))) == [(NUMBER,)]


# -- reindex ---------------------------------------------------------------------------------------

@pytest.mark.usefixtures("restore_registry")
def test_reindex_indexes_the_hash_never_the_number(store):
    from ihs.store.reindex import reindex

    with store.session(write=True) as uow:
        uow.create(resident())
        uow.create({"resourceType": "SearchParameter", "url": "https://ihs.example.org/fhir/SearchParameter/resident-id",
                    "name": "resident-id", "status": "active", "code": "resident-id", "base": ["Patient"],
                    "type": "token", "expression": f"Patient.identifier.where(system = '{RESIDENT_ID}')",
                    "description": "The resident ID number"})
    report = reindex(store, progress=False)
    assert report["resources"] == 1 and not report["errors"]
    with store.engine.connect() as conn:
        codes = conn.exec_driver_sql("SELECT code FROM idx_token WHERE param = 'resident-id'").scalars().all()
    assert codes == [store.protection.digest(NUMBER)]
    assert not [row for row in database_text(store) if NUMBER in row]


# -- the key ---------------------------------------------------------------------------------------

def _write_resident(store: Store) -> str:
    store.protection.check_key()  # what a start does: the database records this key's fingerprint
    with store.session(write=True) as uow:
        return uow.create(resident()).id


def test_a_wrong_key_stops_the_start(store, monkeypatch):
    patient_id = _write_resident(store)
    monkeypatch.setenv("IHS_IDENTIFIER_KEY", base64.b64encode(os.urandom(32)).decode())
    other = Store(url_of(store), pool_size=1)
    try:
        with pytest.raises(IdentifierKeyError, match="is not the key this database's resident ID numbers"):
            other.create_schema()
        with pytest.raises(IdentifierKeyError):  # never the ciphertext, even without the start check
            with other.session() as uow:
                uow.current("Patient", patient_id)
    finally:
        other.dispose()


def test_a_missing_key_stops_the_start(store, monkeypatch, tmp_path):
    _write_resident(store)
    monkeypatch.delenv("IHS_IDENTIFIER_KEY", raising=False)
    monkeypatch.setenv("IHS_IDENTIFIER_KEY_FILE", str(tmp_path / "elsewhere" / "identifier.key"))
    other = Store(url_of(store), pool_size=1)
    try:
        with pytest.raises(IdentifierKeyError, match="no key file at .*elsewhere"):
            other.create_schema()
        assert not (tmp_path / "elsewhere" / "identifier.key").exists()  # no second key is made
    finally:
        other.dispose()


def test_the_right_key_from_the_environment_opens_the_data(monkeypatch, tmp_path):
    key = os.urandom(32)
    monkeypatch.setenv("IHS_IDENTIFIER_KEY", base64.b64encode(key).decode())
    first = Store(f"sqlite:///{tmp_path}/ihs.db", pool_size=1)
    first.create_schema()
    with first.session(write=True) as uow:
        patient = uow.create(resident())
    first.dispose()
    assert not (tmp_path / "keys").exists()  # a configured key is never written to disk
    again = Store(f"sqlite:///{tmp_path}/ihs.db", pool_size=1)
    again.create_schema()
    with again.session() as uow:
        assert values_of(uow.current("Patient", patient.id).resource()) == [NUMBER]
    again.dispose()


@pytest.mark.parametrize("configured, problem", [("not base64!", "not base64"),
                                                 (base64.b64encode(b"short").decode(), "5 bytes long")])
def test_a_malformed_key_is_named(configured, problem, monkeypatch, tmp_path):
    monkeypatch.setenv("IHS_IDENTIFIER_KEY", configured)
    store = Store(f"sqlite:///{tmp_path}/ihs.db", pool_size=1)
    with pytest.raises(IdentifierKeyError, match=problem):
        store.create_schema()
    store.dispose()


def test_the_generated_key_file_is_its_owners_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("IHS_IDENTIFIER_KEY", raising=False)
    monkeypatch.delenv("IHS_IDENTIFIER_KEY_FILE", raising=False)
    store = Store(f"sqlite:///{tmp_path}/db/ihs.db", pool_size=1)
    store.create_schema()
    store.dispose()
    key_file = tmp_path / "db" / "keys" / "identifier.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(key_file.read_text())) == 32


def test_protected_systems_are_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("IHS_PROTECTED_IDENTIFIER_SYSTEMS", f"{RESIDENT_ID}, {MRN}")
    assert IdentifierProtection(engine=None).systems == {RESIDENT_ID, MRN}
    monkeypatch.setenv("IHS_PROTECTED_IDENTIFIER_SYSTEMS", "")
    assert IdentifierProtection(engine=None).systems == frozenset()


# -- the audit trail -------------------------------------------------------------------------------

def test_a_search_by_resident_id_is_audited_with_the_hash(client, store):
    from ihs.store import search

    client.post("/Patient", json=resident())
    client.get("/Patient", params={"identifier": f"{RESIDENT_ID}|{NUMBER}", "gender": "female"})
    client.get("/Patient", params={"identifier": NUMBER})
    flush_audit(store)
    with store.session() as uow:
        events = [s.resource() for s in search.find(uow, "AuditEvent", [], limit=500)]
        digest = store.protection.digest(NUMBER)
    queries = [base64.b64decode(e["query"]).decode() for event in events for e in event.get("entity", [])
               if "query" in e]
    searched = [q for q in queries if "identifier" in q]
    assert len(searched) == 2 and not [q for q in queries if NUMBER in q]
    assert all(digest in q for q in searched) and any("gender=female" in q for q in searched)


def test_masked_queries_keep_what_is_not_protected(tmp_path):
    protection = Store(f"sqlite:///{tmp_path}/ihs.db", pool_size=1).protection
    digest = protection.digest(NUMBER)
    assert protection.masked_query(f"identifier={RESIDENT_ID}|{NUMBER},{MRN}|MRN-0042&_count=5") == \
        f"identifier={RESIDENT_ID}|{digest},{MRN}|MRN-0042&_count=5"
    assert protection.masked_query(f"subject:identifier={NUMBER}") == f"subject:identifier={digest}"
    assert protection.masked_query(f"identifier:of-type={ID_TYPE}|NNCHN|{NUMBER}") == \
        f"identifier:of-type={ID_TYPE}|NNCHN|{digest}"
    assert protection.masked_query("name=Wang&birthdate=ge1980") == "name=Wang&birthdate=ge1980"


def test_a_contained_resident_is_sealed_and_found_plain(client, store):
    contained = resident()
    contained["id"] = "p1"
    observation = {"resourceType": "Observation", "status": "final", "contained": [contained],
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                   "subject": {"reference": "#p1"}}
    created = client.post("/Observation", json=observation).json()
    assert values_of(created["contained"][0]) == [NUMBER]
    found = client.get("/Patient", params={"_contained": "true", "_containedType": "contained",
                                           "identifier": f"{RESIDENT_ID}|{NUMBER}"}).json()
    assert [values_of(e["resource"]) for e in found["entry"]] == [[NUMBER]]
    flush_audit(store)
    assert not [row for row in database_text(store) if NUMBER in row]


# -- databases written before the number was protected --------------------------------------------

def test_the_start_seals_numbers_an_earlier_version_stored_plain(store):
    from ihs.store import search
    from ihs.store.sealing import seal_stored_identifiers

    protecting = store.protection
    store.protection = IdentifierProtection(store.engine, systems=frozenset())  # as before protection existed
    try:
        with store.session(write=True) as uow:
            patient = uow.create(resident())
        with store.session(write=True) as uow:
            uow.update(dict(patient.resource(), gender="other"), uow.current("Patient", patient.id))
    finally:
        store.protection = protecting
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM identifier_key")  # a database from before the table existed
    assert [row for row in database_text(store) if NUMBER in row]

    restarted = Store(url_of(store), pool_size=1)
    try:
        restarted.create_schema()
        assert not [row for row in database_text(store) if NUMBER in row]
        with restarted.session() as uow:
            [found] = search.find(uow, "Patient", [("identifier", f"{RESIDENT_ID}|{NUMBER}")])
            assert values_of(found.resource()) == [NUMBER]
            assert values_of(uow.version("Patient", patient.id, 1).resource()) == [NUMBER]
        assert restarted.protection.check_key() == set()  # recorded: later starts scan nothing
        assert seal_stored_identifiers(restarted, {RESIDENT_ID}) == 0  # sealed versions stay as they are
    finally:
        restarted.dispose()
