"""The store: versions, history, the outbox, atomicity, concurrent writers."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ihs.fhir.errors import Conflict
from ihs.store.schema import idx_token, outbox, resource_history, resources


def _count(store, table):
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_create_writes_resource_history_index_and_outbox_together(store):
    with store.session(write=True) as uow:
        uow.create({"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "1"}]})
    assert _count(store, resources) == 1
    assert _count(store, resource_history) == 1
    assert _count(store, idx_token) >= 1
    with store.engine.connect() as conn:
        row = conn.execute(select(outbox.c.res_type, outbox.c.version, outbox.c.interaction)).one()
    assert tuple(row) == ("Patient", 1, "create")


def test_failed_unit_of_work_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        with store.session(write=True) as uow:
            uow.create({"resourceType": "Patient"})
            uow.flush()
            raise RuntimeError("entry 2 failed")
    for table in (resources, resource_history, outbox, idx_token):
        assert _count(store, table) == 0


def test_update_replaces_index_rows_and_keeps_history(store):
    with store.session(write=True) as uow:
        created = uow.create({"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "old"}]})
    with store.session(write=True) as uow:
        current = uow.current("Patient", created.id)
        uow.update({"resourceType": "Patient", "id": created.id,
                    "identifier": [{"system": "urn:x", "value": "new"}]}, current)
    with store.engine.connect() as conn:
        codes = conn.execute(select(idx_token.c.code).where(idx_token.c.param == "identifier")).scalars().all()
    assert codes == ["new"]
    with store.session() as uow:
        versions, total = uow.history("Patient", created.id)
    assert total == 2 and [v.version for v in versions] == [2, 1]


def test_concurrent_update_of_the_same_version_is_a_conflict(store):
    with store.session(write=True) as uow:
        created = uow.create({"resourceType": "Patient"})
    with store.session() as uow:
        stale = uow.current("Patient", created.id)
    with store.session(write=True) as uow:
        uow.update({"resourceType": "Patient", "id": created.id, "active": True}, stale)
    with pytest.raises(Conflict) as caught:
        with store.session(write=True) as uow:
            uow.update({"resourceType": "Patient", "id": created.id, "active": False}, stale)
    assert caught.value.status == 409


def test_delete_keeps_history_and_clears_index(store):
    with store.session(write=True) as uow:
        created = uow.create({"resourceType": "Patient", "identifier": [{"value": "x"}]})
    with store.session(write=True) as uow:
        uow.delete(uow.current("Patient", created.id))
    with store.session() as uow:
        current = uow.current("Patient", created.id)
        assert current.deleted and current.version == 2
        assert uow.version("Patient", created.id, 1).resource()["identifier"][0]["value"] == "x"
    assert _count(store, idx_token) == 0


def test_starting_on_an_older_database_adds_the_indexes_it_lacks(store):
    from sqlalchemy import inspect, text

    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX idx_date_long"))
    assert "idx_date_long" not in {i["name"] for i in inspect(store.engine).get_indexes("idx_date")}
    store.create_schema()
    assert "idx_date_long" in {i["name"] for i in inspect(store.engine).get_indexes("idx_date")}
