"""$viewdefinition-run over HTTP: stored and inline views, every output format, patient narrowing, errors."""
from __future__ import annotations

import csv
import io

import orjson
import pyarrow.parquet as pq

VIEW = {
    "resourceType": "ViewDefinition", "name": "patient_demographics", "status": "active", "resource": "Patient",
    "select": [{"column": [{"name": "id", "path": "getResourceKey()"},
                           {"name": "gender", "path": "gender"},
                           {"name": "birth_date", "path": "birthDate", "type": "date"}]},
               {"forEachOrNull": "name.where(use = 'official')",
                "column": [{"name": "family", "path": "family"},
                           {"name": "given", "path": "given.join(' ')"}]}],
}
OBSERVATIONS = {
    "resourceType": "ViewDefinition", "name": "observations", "resource": "Observation",
    "select": [{"column": [{"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                           {"name": "code", "path": "code.coding.code.first()"},
                           {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"}]}],
}


def _create(client, resource: dict) -> dict:
    response = client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()


def _people(client) -> tuple[dict, dict]:
    a = _create(client, {"resourceType": "Patient", "gender": "female", "birthDate": "1980-02-03",
                         "name": [{"use": "official", "family": "王", "given": ["秀", "英"]}]})
    b = _create(client, {"resourceType": "Patient", "gender": "male", "birthDate": "1975"})
    for patient, value in ((a, 120), (b, 135.5)):
        _create(client, {"resourceType": "Observation", "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                         "subject": {"reference": f"Patient/{patient['id']}"},
                         "valueQuantity": {"value": value, "unit": "mmHg"}})
    return a, b


def _run(client, body: dict, **query):
    return client.post("/$viewdefinition-run", json=body, params=query)


def _parameters(*parameters) -> dict:
    return {"resourceType": "Parameters", "parameter": list(parameters)}


def test_a_stored_view_runs_by_reference_as_json(client):
    a, b = _people(client)
    stored = client.post("/ViewDefinition", json=VIEW)
    assert stored.status_code == 201
    library = stored.json()
    assert library["resourceType"] == "Library" and library["name"] == "patient_demographics"
    assert client.get(f"/ViewDefinition/{library['id']}").json() == VIEW
    reference = {"name": "viewReference", "valueReference": {"reference": f"Library/{library['id']}"}}
    response = _run(client, _parameters(reference, {"name": "_format", "valueCode": "json"}))
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    rows = sorted(response.json(), key=lambda r: r["gender"])
    assert rows == [{"id": a["id"], "gender": "female", "birth_date": "1980-02-03", "family": "王", "given": "秀 英"},
                    {"id": b["id"], "gender": "male", "birth_date": "1975", "family": None, "given": ""}]


def test_instance_level_get_returns_csv_with_and_without_header(client):
    _people(client)
    library = client.post("/ViewDefinition", json=VIEW).json()
    response = client.get(f"/ViewDefinition/{library['id']}/$run?_format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["id", "gender", "birth_date", "family", "given"] and len(rows) == 3
    bare = client.get(f"/Library/{library['id']}/$viewdefinition-run?_format=text/csv&header=false")
    assert len(list(csv.reader(io.StringIO(bare.text)))) == 2


def test_inline_view_as_ndjson_and_parquet(client):
    a, _ = _people(client)
    body = _parameters({"name": "viewResource", "resource": OBSERVATIONS})
    ndjson = _run(client, body)
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    rows = sorted((orjson.loads(line) for line in ndjson.content.splitlines()), key=lambda r: r["value"])
    assert rows[0] == {"patient": a["id"], "code": "8480-6", "value": 120}
    parquet = _run(client, body, _format="parquet")
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column_names == ["patient", "code", "value"]
    assert sorted(table.column("value").to_pylist()) == [120.0, 135.5]


def test_patient_parameter_narrows_to_the_compartment(client):
    a, _ = _people(client)
    body = _parameters({"name": "viewResource", "resource": OBSERVATIONS},
                       {"name": "patient", "valueReference": {"reference": f"Patient/{a['id']}"}},
                       {"name": "_format", "valueCode": "json"})
    assert [r["patient"] for r in _run(client, body).json()] == [a["id"]]


def test_inline_resources_and_limit(client):
    resources = [{"resourceType": "Patient", "id": f"p{i}", "gender": "other"} for i in range(5)]
    body = _parameters({"name": "viewResource", "resource": VIEW}, {"name": "_limit", "valueInteger": 3},
                       {"name": "_format", "valueCode": "json"},
                       *({"name": "resource", "resource": r} for r in resources))
    assert [r["id"] for r in _run(client, body).json()] == ["p0", "p1", "p2"]


def test_invalid_view_is_400_naming_the_element(client):
    broken = dict(VIEW, select=[{"column": [{"name": "bad name", "path": "id"}]}])
    response = _run(client, _parameters({"name": "viewResource", "resource": broken}))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["ViewDefinition.select[0].column[0].name"]
    assert client.post("/ViewDefinition", json={"resource": "Patient"}).status_code == 400


def test_view_named_twice_or_not_at_all_is_400_and_unknown_library_404(client):
    assert _run(client, _parameters()).status_code == 400
    assert client.get("/ViewDefinition/nope/$run").status_code == 404
    assert _run(client, _parameters({"name": "viewResource", "resource": VIEW}), _format="xlsx").status_code == 400
