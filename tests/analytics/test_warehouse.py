"""The warehouse follows the store: full build first, then only changes, deletions included."""
from __future__ import annotations

from ihs.analytics.warehouse import Warehouse

PATIENTS = {"resourceType": "ViewDefinition", "name": "patients", "resource": "Patient",
            "select": [{"column": [{"name": "gender", "path": "gender"}]}]}


def _write(store, work):
    with store.session(write=True) as uow:
        return work(uow)


def test_refresh_reads_everything_once_then_only_changes(store):
    ids = _write(store, lambda uow: [uow.create({"resourceType": "Patient", "gender": "male"}).id for _ in range(3)])
    warehouse = Warehouse(store, [PATIENTS])
    first = warehouse.refresh()[0]
    assert (first.full, first.resources, first.rows) == (True, 3, 3)

    def change(uow):
        current = uow.current("Patient", ids[0])
        uow.update(dict(current.resource(), gender="female"), current)
        uow.delete(uow.current("Patient", ids[1]))
        uow.create({"resourceType": "Patient", "gender": "other"})
    _write(store, change)
    second = warehouse.refresh()[0]
    assert not second.full and second.rows == 3
    assert second.resources < 5  # the changed ones (and any inside the overlap window), not a full scan
    rows = warehouse.query("SELECT resource_key, gender FROM patients ORDER BY gender")
    assert sorted(r["gender"] for r in rows) == ["female", "male", "other"]
    assert ids[1] not in {r["resource_key"] for r in rows}


def test_a_changed_view_definition_rebuilds_its_table(store):
    _write(store, lambda uow: uow.create({"resourceType": "Patient", "gender": "male", "birthDate": "1990"}))
    warehouse = Warehouse(store, [PATIENTS])
    warehouse.refresh()
    widened = dict(PATIENTS, select=[{"column": [{"name": "gender", "path": "gender"},
                                                 {"name": "born", "path": "birthDate"}]}])
    warehouse.views = Warehouse(store, [widened]).views
    refreshed = warehouse.refresh()[0]
    assert refreshed.full and warehouse.query("SELECT born FROM patients") == [{"born": "1990"}]
