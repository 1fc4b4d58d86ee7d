"""Supervision indicators: alerts by severity, override rates and the antibiotic prescription rate."""
from __future__ import annotations

from datetime import date

from ihs.cds import supervision
from ihs.cds.gate import Override
from ihs.workflows import prescribing
from tests.cds.helpers import condition, order, patient, practitioner

AUTHORED = "2026-05-01T09:00:00+08:00"


def seed(store, *resources):
    with store.session(write=True) as uow:
        for resource in resources:
            uow.create(dict(resource), method="PUT")


def encounter(id_: str, provider: str) -> dict:
    return {"resourceType": "Encounter", "id": id_, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/p1"}, "serviceProvider": {"reference": provider}}


def region(store):
    seed(store, patient(), practitioner(),
         {"resourceType": "Organization", "id": "hospital", "name": "区人民医院"},
         {"resourceType": "Organization", "id": "dept", "name": "内科", "partOf": {"reference": "Organization/hospital"}},
         encounter("e1", "Organization/dept"), encounter("e2", "Organization/hospital"),
         encounter("e3", "Organization/hospital"),
         condition("J02.9", "c1"), condition("E78.5", "c2"),
         order("rx1", "amoxicillin", status="active", dose=500, per_day=3, encounter={"reference": "Encounter/e1"}),
         order("rx2", "paracetamol", status="active", dose=500, per_day=3, encounter={"reference": "Encounter/e1"}),
         order("rx3", "simvastatin", status="active", dose=20, encounter={"reference": "Encounter/e3"}),
         order("draft", "clarithromycin", dose=500, per_day=2, encounter={"reference": "Encounter/e2"},
               authored=AUTHORED))


def test_indicators_per_facility_and_prescriber(store):
    region(store)
    with store.session(write=True) as uow:
        first = prescribing.sign(uow, "draft")
    card = next(c for c in first.result.cards if c["indicator"] == "critical")
    with store.session(write=True) as uow:
        prescribing.sign(uow, "draft", overrides=[Override(card["uuid"], card["overrideReasons"][0])])
    with store.session() as uow:
        today = date.today()
        found = supervision.indicators(uow, date(2026, 4, 1), max(today, date(2026, 5, 31)))
    hospital = next(f for f in found["facilities"] if f["facility"] == "Organization/hospital")
    assert hospital["prescriptions"] == 3  # e1 (two orders, one prescription), e2 clarithromycin, e3 statin
    assert hospital["antibioticPrescriptions"] == 2
    assert hospital["antibioticRate"] == round(2 / 3, 4)
    assert hospital["alerts"]["critical"] == 1 and hospital["overridden"]["critical"] == 1
    assert hospital["overrideRate"] == 1.0
    assert hospital["alertsByCheck"] == {"ddi": 1}
    doctor = next(p for p in found["prescribers"] if p["prescriber"] == "Practitioner/dr1")
    assert doctor["facility"] == "Organization/hospital" and doctor["prescriptions"] == 3


def test_indicators_filter_by_facility_and_answer_over_http(client, store):
    region(store)
    response = client.get("/supervision/prescribing?start=2026-04-01&end=2026-05-31&facility=Organization/nowhere")
    assert response.status_code == 200 and response.json()["facilities"] == []
    response = client.get("/supervision/prescribing?start=2026-04-01&end=2026-05-31")
    assert response.json()["facilities"][0]["antibioticPrescriptions"] == 1
    assert client.get("/supervision/prescribing?start=nope").status_code == 400
