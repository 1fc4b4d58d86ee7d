"""A small demo region in a SQLite store, and views over it, shared by the analytics tests."""
from __future__ import annotations

import pytest

REGION_VIEWS = [
    {"resourceType": "ViewDefinition", "name": "patients", "resource": "Patient", "status": "active",
     "select": [{"column": [{"name": "id", "path": "getResourceKey()"},
                            {"name": "gender", "path": "gender"},
                            {"name": "birth_date", "path": "birthDate", "type": "date"},
                            {"name": "deceased", "path": "deceased.ofType(boolean)", "type": "boolean"}]},
                {"forEachOrNull": "name.first()",
                 "column": [{"name": "family", "path": "family"},
                            {"name": "given", "path": "given", "collection": True}]}]},
    {"resourceType": "ViewDefinition", "name": "observations", "resource": "Observation", "status": "active",
     "select": [{"column": [{"name": "id", "path": "getResourceKey()"},
                            {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                            {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"}]},
                {"forEach": "code.coding",
                 "column": [{"name": "system", "path": "system"}, {"name": "code", "path": "code"}]},
                {"unionAll": [{"column": [{"name": "value", "path": "value.ofType(Quantity).value",
                                           "type": "decimal"},
                                          {"name": "unit", "path": "value.ofType(Quantity).unit"}]},
                              {"forEach": "component",
                               "column": [{"name": "value", "path": "value.ofType(Quantity).value",
                                           "type": "decimal"},
                                          {"name": "unit", "path": "value.ofType(Quantity).unit"}]}]}]},
    {"resourceType": "ViewDefinition", "name": "encounters", "resource": "Encounter", "status": "active",
     "select": [{"column": [{"name": "id", "path": "getResourceKey()"},
                            {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                            {"name": "class", "path": "class.code"},
                            {"name": "start", "path": "period.start", "type": "dateTime"},
                            {"name": "n_diagnoses", "path": "diagnosis.count()", "type": "integer"}]}],
     "where": [{"path": "status = 'finished'"}]},
]


@pytest.fixture(scope="session")
def region_store(tmp_path_factory):
    """A SQLite store holding a generated region of 30 residents (about 1,000 resources)."""
    from ihs.api import bundle
    from ihs.demo.generator import generate_region
    from ihs.store.store import Store

    store = Store(f"sqlite:///{tmp_path_factory.mktemp('region')}/ihs.db")
    store.create_schema()
    for item in generate_region(seed=7, residents=30):
        bundle.process(store, item)
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def region_views():
    return REGION_VIEWS
