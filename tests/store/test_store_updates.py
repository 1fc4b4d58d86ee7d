"""The store's update path: index rows replaced in bulk at flush, history kept, many ids read at once."""
from __future__ import annotations

from sqlalchemy import func, select

from ihs.store import search
from ihs.store.schema import contained_resources, idx_position, idx_token


def _identifier_codes(store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(select(idx_token.c.code).where(idx_token.c.param == "identifier")).scalars())


def _patient(pid: str, value: str, **more) -> dict:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": "urn:x", "value": value}], **more}


def test_two_updates_in_one_unit_of_work_keep_every_version_and_only_the_last_index_rows(store):
    with store.session(write=True) as uow:
        uow.create(_patient("a", "v1"))
    with store.session(write=True) as uow:
        second = uow.update(_patient("a", "v2"), uow.current("Patient", "a"))
        uow.update(_patient("a", "v3"), second)  # no read between: both versions' rows are buffered
    assert _identifier_codes(store) == ["v3"]
    with store.session() as uow:
        contents = [uow.version("Patient", "a", v).resource()["identifier"][0]["value"] for v in (1, 2, 3)]
        assert contents == ["v1", "v2", "v3"]
        assert uow.current("Patient", "a").version == 3


def test_updates_of_many_resources_in_one_unit_of_work_replace_each_ones_rows(store):
    with store.session(write=True) as uow:
        for n in range(5):
            uow.create(_patient(f"p{n}", f"old{n}"))
    with store.session(write=True) as uow:
        for n in range(5):
            uow.update(_patient(f"p{n}", f"new{n}"), uow.current("Patient", f"p{n}"))
        uow.delete(uow.current("Patient", "p4"))
    assert _identifier_codes(store) == ["new0", "new1", "new2", "new3"]
    with store.session() as uow:
        found = search.find(uow, "Patient", [("identifier", "urn:x|new2")], limit=10)
        assert [s.id for s in found] == ["p2"]
        assert search.find(uow, "Patient", [("identifier", "urn:x|old2")], limit=10) == []


def test_a_read_after_an_update_in_the_same_unit_of_work_sees_the_new_version_and_search_its_rows(store):
    with store.session(write=True) as uow:
        uow.create(_patient("a", "before"))
    with store.session(write=True) as uow:
        uow.update(_patient("a", "after"), uow.current("Patient", "a"))
        assert uow.current("Patient", "a").resource()["identifier"][0]["value"] == "after"
        assert [s.id for s in search.find(uow, "Patient", [("identifier", "urn:x|after")], limit=10)] == ["a"]
        assert search.find(uow, "Patient", [("identifier", "urn:x|before")], limit=10) == []


def test_updating_a_container_replaces_its_contained_resources_and_their_rows(store):
    def observation(code: str) -> dict:
        return {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"},
                "contained": [{"resourceType": "Patient", "id": "p1",
                               "identifier": [{"system": "urn:x", "value": code}]}],
                "subject": {"reference": "#p1"}}

    with store.session(write=True) as uow:
        uow.create(observation("inner-old"))
    with store.session(write=True) as uow:
        uow.update(observation("inner-new"), uow.current("Observation", "o"))
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(contained_resources)).scalar_one() == 1
    assert _identifier_codes(store) == ["inner-new"]


def test_updating_a_location_replaces_its_position(store):
    def location(latitude: float) -> dict:
        return {"resourceType": "Location", "id": "l", "position": {"latitude": latitude, "longitude": 120.1}}

    with store.session(write=True) as uow:
        uow.create(location(30.0))
    with store.session(write=True) as uow:
        uow.update(location(31.0), uow.current("Location", "l"))
    with store.engine.connect() as conn:
        assert conn.execute(select(idx_position.c.latitude)).scalars().all() == [31.0]


def test_currents_reads_many_ids_of_one_type_including_this_unit_of_works_creates(store):
    with store.session(write=True) as uow:
        uow.create(_patient("a", "1"))
        uow.create(_patient("gone", "2"))
    with store.session(write=True) as uow:
        uow.delete(uow.current("Patient", "gone"))
        uow.create(_patient("fresh", "3"))  # still buffered when read
        found = uow.currents("Patient", ["a", "gone", "fresh", "never"])
        assert sorted(found) == ["a", "fresh", "gone"]
        assert found["gone"].deleted and not found["a"].deleted and found["fresh"].version == 1
        assert found["a"].resource()["identifier"][0]["value"] == "1"
        assert uow.currents("Patient", []) == {}
        assert uow.currents("Observation", ["a"]) == {}
