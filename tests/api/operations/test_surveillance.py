"""Syndromic surveillance over HTTP: counts as MeasureReports, detection alerts, case reports."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from ihs.surveillance import alerts, counts
from ihs.surveillance.changes import on_change
from ihs.surveillance.visits import Visit
from tests.surveillance.records import Event, condition, encounter, patient


@pytest.fixture
def api(client, store):
    counts.clear(store)
    yield client, store
    counts.clear(store)


def _put(client, resource):
    response = client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text


def test_counts_come_back_as_daily_measure_reports_stratified_by_district(api):
    client, store = api
    for pid, district in (("a", "吴兴区"), ("b", "德清县")):
        _put(client, patient(pid, district=district))
        _put(client, encounter(f"e-{pid}", pid, "2024-01-10", complaint="发热伴咳嗽"))
        on_change(store, Event("Encounter", f"e-{pid}"))
    response = client.get("/$syndromic-counts", params={"syndrome": "ili", "start": "2024-01-09",
                                                         "end": "2024-01-10", "by": "district"})
    assert response.status_code == 200, response.text
    reports = [e["resource"] for e in response.json()["entry"]]
    assert [r["period"]["start"] for r in reports] == ["2024-01-09", "2024-01-10"]
    assert [r["group"][0]["population"][0]["count"] for r in reports] == [0, 2]
    strata = reports[1]["group"][0]["stratifier"][0]["stratum"]
    assert {s["value"]["text"]: s["population"][0]["count"] for s in strata} == {"吴兴区": 1, "德清县": 1}


def test_counts_reject_an_unknown_syndrome_with_an_outcome(api):
    client, _ = api
    response = client.get("/$syndromic-counts", params={"syndrome": "plague-ish", "start": "2024-01-01",
                                                         "end": "2024-01-02"})
    assert response.status_code == 400
    assert "syndrome" in response.json()["issue"][0]["diagnostics"]


def test_detect_raises_one_flag_and_communication_with_the_series(api):
    client, store = api
    client.put("/Organization/hz-cdc", json={"resourceType": "Organization", "id": "hz-cdc", "identifier": [
        {"system": "https://ihs.example.org/fhir/sid/organization", "value": "HZ-CDC"}]})
    last = date(2024, 3, 1)
    for back in range(60):
        day = last - timedelta(days=back)
        for n in range(40 if back == 0 else 4 + back % 3):
            counts.record(store, f"v{back}-{n}", Visit(f"v{back}-{n}", day, "吴兴区", "Organization/x",
                                                       "25-59", "male", ("ili",)))
    params = {"date": last.isoformat(), "syndrome": "ili", "method": "ears-c2"}
    first = client.post("/$syndromic-detect", params=params)
    assert first.status_code == 200, first.text
    kinds = sorted(e["resource"]["resourceType"] for e in first.json()["entry"])
    assert kinds == ["Communication", "Communication", "Flag", "Flag"]  # the region and its district
    note = next(e["resource"] for e in first.json()["entry"] if e["resource"]["resourceType"] == "Communication")
    assert note["recipient"] == [{"reference": "Organization/hz-cdc"}]
    carried = alerts.series_of(note)
    assert carried["observed"] == 40 and carried["series"][-1] == 40 and carried["threshold"] < 40
    again = client.post("/$syndromic-detect", params=params)
    assert sorted(e["resource"]["id"] for e in again.json()["entry"]) == \
        sorted(e["resource"]["id"] for e in first.json()["entry"])
    flags = client.get("/Flag", params={"identifier": f"{alerts.ALERT}|ili/*/2024-03-01/ears-c2"}).json()
    assert len(flags["entry"]) == 1


def test_case_report_is_made_once_and_refused_for_a_diagnosis_that_is_not_notifiable(api):
    client, _ = api
    _put(client, patient("p-cr"))
    _put(client, condition("c-measles", "p-cr", "B05.9"))
    _put(client, condition("c-bp", "p-cr", "I10"))
    created = client.post("/Condition/c-measles/$case-report")
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["resourceType"] == "Task" and task["status"] == "requested"
    assert client.post("/Condition/c-measles/$case-report").json()["id"] == task["id"]
    bundle = client.get(f"/{task['focus']['reference']}").json()
    assert bundle["type"] == "document" and bundle["entry"][0]["resource"]["resourceType"] == "Composition"
    refused = client.post("/Condition/c-bp/$case-report")
    assert refused.status_code == 422
    assert client.post("/Condition/nothing/$case-report").status_code == 404
