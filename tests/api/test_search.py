"""Search over HTTP: searchset Bundles, paging links, lenient handling, _summary/_elements, compartments."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

LOINC = "http://loinc.org"


def put(client, resource: dict) -> dict:
    response = client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture
def region(client):
    for i in range(5):
        put(client, {"resourceType": "Patient", "id": f"p{i}", "gender": "female" if i % 2 else "male",
                     "birthDate": f"198{i}-06-01", "name": [{"family": f"Family{i}", "given": ["Li"]}],
                     "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">p</div>"}})
    for i in range(3):
        put(client, {"resourceType": "Observation", "id": f"o{i}", "status": "final",
                     "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                     "subject": {"reference": "Patient/p0"}, "effectiveDateTime": f"2024-01-0{i + 1}",
                     "valueQuantity": {"value": 60 + i, "system": "http://unitsofmeasure.org", "code": "/min",
                                       "unit": "/min"}})
    return client


def _link(bundle: dict, relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def test_search_answers_a_searchset_bundle_with_matches(region):
    bundle = region.get("/Patient?gender=female").json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 2
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"p1", "p3"}
    assert all(e["search"]["mode"] == "match" for e in bundle["entry"])
    assert bundle["entry"][0]["fullUrl"].startswith("http://testserver/Patient/")


def test_paging_links_are_absolute_and_stable(region):
    first = region.get("/Patient?_sort=birthdate&_count=2").json()
    assert _link(first, "self").startswith("http://testserver/Patient?")
    assert _link(first, "previous") is None
    seen = [e["resource"]["id"] for e in first["entry"]]
    page = first
    while _link(page, "next"):
        url = _link(page, "next")
        page = region.get(url[len("http://testserver"):]).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert seen == ["p0", "p1", "p2", "p3", "p4"]
    previous = region.get(_link(page, "previous")[len("http://testserver"):]).json()
    assert [e["resource"]["id"] for e in previous["entry"]] == ["p2", "p3"]
    assert dict(parse_qsl(urlsplit(_link(page, "last")).query))["_offset"] == "4"


def test_post_search_with_a_form_body(region):
    response = region.post("/Patient/_search", content="gender=male&birthdate=ge1982",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert {e["resource"]["id"] for e in response.json()["entry"]} == {"p2", "p4"}


def test_unknown_parameter_is_400_naming_it(region):
    response = region.get("/Patient?colour=red")
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "colour" in outcome["issue"][0]["diagnostics"]


def test_malformed_value_is_400_naming_the_parameter(region):
    response = region.get("/Patient?birthdate=someday")
    assert response.status_code == 400
    assert "birthdate" in response.json()["issue"][0]["diagnostics"]


def test_lenient_handling_reports_ignored_parameters_in_an_outcome_entry(region):
    response = region.get("/Patient?colour=red&gender=male", headers={"Prefer": "handling=lenient"})
    assert response.status_code == 200
    bundle = response.json()
    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    issue = outcomes[0]["resource"]["issue"][0]
    assert issue["severity"] == "warning" and "colour" in issue["diagnostics"]
    assert {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"} == {"p0", "p2", "p4"}
    assert "colour" not in _link(bundle, "self")


def test_include_entries_have_mode_include(region):
    bundle = region.get("/Observation?_id=o1&_include=Observation:subject").json()
    modes = {e["resource"]["id"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"o1": "match", "p0": "include"}


def test_summary_count_text_and_data(region):
    counted = region.get("/Patient?_summary=count").json()
    assert counted["total"] == 5 and "entry" not in counted
    text = region.get("/Patient?_id=p1&_summary=text").json()["entry"][0]["resource"]
    assert set(text) <= {"resourceType", "id", "meta", "text"} and "text" in text
    assert any(t["code"] == "SUBSETTED" for t in text["meta"]["tag"])
    data = region.get("/Patient?_id=p1&_summary=data").json()["entry"][0]["resource"]
    assert "text" not in data and data["gender"] == "female"


def test_elements_keeps_what_is_asked_for_plus_mandatory_elements(region):
    patient = region.get("/Patient?_id=p1&_elements=gender").json()["entry"][0]["resource"]
    assert set(patient) == {"resourceType", "id", "meta", "gender"}
    observation = region.get("/Observation?_id=o1&_elements=value").json()["entry"][0]["resource"]
    # status and code are mandatory; value[x] is asked for by its name without type
    assert set(observation) == {"resourceType", "id", "meta", "status", "code", "valueQuantity"}


def test_compartment_search(region):
    bundle = region.get("/Patient/p0/Observation?date=ge2024-01-02").json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"o1", "o2"}
    assert _link(bundle, "self").startswith("http://testserver/Patient/p0/Observation?")
    assert region.get("/Patient/p1/Observation").json()["total"] == 0
    assert region.get("/Patient/p0/Organization").status_code == 400


def test_system_search_with_type(region):
    bundle = region.get("/?_type=Patient,Observation&_id=p1,o1").json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"p1", "o1"}
    assert "_type=Patient%2CObservation" in _link(bundle, "self")


def test_conditional_create_accepts_any_search(region):
    patient = {"resourceType": "Patient", "gender": "male", "birthDate": "1982-06-01"}
    response = region.post("/Patient", json=patient, headers={"If-None-Exist": "birthdate=1982-06-01&family=family2"})
    assert response.status_code == 200 and response.json()["id"] == "p2"


def test_conditional_update_with_a_chain(region):
    observation = {"resourceType": "Observation", "status": "amended", "code": {"text": "pulse"},
                   "subject": {"reference": "Patient/p0"}}
    response = region.put("/Observation?subject:Patient.name=family0&date=2024-01-03", json=observation)
    assert response.status_code == 200 and response.json()["id"] == "o2"


def test_search_inside_a_batch(region):
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?gender=female&_sort=_id"}}]}
    response = region.post("/", json=batch)
    assert response.status_code == 200
    inner = response.json()["entry"][0]["resource"]
    assert [e["resource"]["id"] for e in inner["entry"]] == ["p1", "p3"]


def test_capability_statement_lists_what_search_answers(region):
    statement = region.get("/metadata").json()
    observation = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Observation")
    names = {p["name"] for p in observation["searchParam"]}
    assert {"code", "subject", "date", "value-quantity", "code-value-quantity", "_id", "_lastUpdated",
            "_tag"} <= names
    assert {"_list", "_filter"} <= names
    assert not {"_text", "_content"} & names  # full text is indexed for text-bearing types only
    condition = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Condition")
    assert {"_text", "_content"} <= {p["name"] for p in condition["searchParam"]}
    assert "_query" not in names  # named queries are not defined by this server


def test_summary_true_keeps_only_the_elements_marked_as_summary(client):
    created = client.post("/Patient", json={"resourceType": "Patient", "gender": "female", "birthDate": "1950-01-01",
                                            "maritalStatus": {"text": "married"},
                                            "name": [{"family": "赵"}]}).json()
    bundle = client.get(f"/Patient?_id={created['id']}&_summary=true").json()
    summarized = bundle["entry"][0]["resource"]
    assert summarized["gender"] == "female" and summarized["name"] == [{"family": "赵"}]
    assert "maritalStatus" not in summarized
    assert any(t.get("code") == "SUBSETTED" for t in summarized["meta"].get("tag", []))
