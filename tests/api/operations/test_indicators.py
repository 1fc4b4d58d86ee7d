"""GET $indicators over HTTP: the list, one indicator, refresh as data arrives, errors."""
from __future__ import annotations

import pytest

from ihs.api.operations import indicators


@pytest.fixture(autouse=True)
def refresh_always(monkeypatch):
    monkeypatch.setattr(indicators, "REFRESH_SECONDS", 0)


def _encounter(client, start: str) -> None:
    organization = client.post("/Organization", json={"resourceType": "Organization", "name": "Dipu centre"}).json()
    response = client.post("/Encounter", json={
        "resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "serviceProvider": {"reference": f"Organization/{organization['id']}"}, "period": {"start": start}})
    assert response.status_code == 201


def test_the_list_names_every_indicator(client):
    body = client.get("/$indicators").json()
    names = [i["name"] for i in body["indicators"]]
    assert names[:2] == ["visits", "bed-occupancy"] and "referrals" in names
    assert body["indicators"][0]["url"] == "http://testserver/$indicators/visits"


def test_an_indicator_follows_new_data(client):
    _encounter(client, "2024-05-01T09:00:00+08:00")
    first = client.get("/$indicators/visits?from=2024-05&to=2024-05")
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert [(r["facility_name"], r["encounters"]) for r in first.json()["rows"]] == [("Dipu centre", 1)]
    _encounter(client, "2024-06-01T09:00:00+08:00")
    months = [r["month"] for r in client.get("/$indicators/visits").json()["rows"]]
    assert months == ["2024-05", "2024-06"]


def test_unknown_indicator_is_404_and_a_bad_month_400(client):
    assert client.get("/$indicators/happiness").status_code == 404
    response = client.get("/$indicators/visits?from=May")
    assert response.status_code == 400 and response.json()["issue"][0]["expression"] == ["from"]
