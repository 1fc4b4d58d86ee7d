"""Notifiable-disease case reports: document Bundle to the CDC with a Task tracking it."""
from __future__ import annotations

from ihs.surveillance import casereport
from ihs.surveillance.changes import on_change
from ihs.store import search
from tests.surveillance.records import Event, condition, encounter, patient, save

CDC = {"resourceType": "Organization", "id": "hz-cdc", "name": "湖州市疾病预防控制中心",
       "identifier": [{"system": "https://ihs.example.org/fhir/sid/organization", "value": "HZ-CDC"}]}
HOSPITAL = {"resourceType": "Organization", "id": "hz-nth", "name": "湖州市南太湖医院"}


def _tasks(store):
    with store.session() as uow:
        return search.find(uow, "Task", [("identifier", f"{casereport.CASE_REPORT}|Condition/c-flu")], limit=10)


def test_confirmed_notifiable_diagnosis_is_reported_once_to_the_cdc(surveillance_store):
    store = surveillance_store
    for resource in (CDC, HOSPITAL, patient("p-flu")):
        save(store, resource)
    save(store, encounter("e-flu", "p-flu", "2024-01-10", diagnoses=["c-flu"]))
    save(store, condition("c-flu", "p-flu", "A01.0", encounter_id="e-flu"))
    on_change(store, Event("Condition", "c-flu"))
    on_change(store, Event("Condition", "c-flu"))
    tasks = _tasks(store)
    assert len(tasks) == 1
    task = tasks[0].resource()
    assert task["status"] == "requested" and task["owner"] == {"reference": "Organization/hz-cdc"}
    assert task["priority"] == "asap" and task["restriction"]["period"]["end"] == "2024-01-11T02:00:00Z"
    with store.session() as uow:
        bundle = uow.current("Bundle", task["focus"]["reference"].split("/")[1]).resource()
    assert bundle["type"] == "document"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Composition", "Patient", "Condition", "Encounter", "Organization"]
    composition = bundle["entry"][0]["resource"]
    assert composition["type"]["coding"][0]["code"] == "55751-2"
    assert "Typhoid" in composition["title"]


def test_unconfirmed_or_not_notifiable_diagnosis_is_not_reported(surveillance_store):
    store = surveillance_store
    save(store, patient("p-x"))
    save(store, condition("c-flu", "p-x", "A01.0", status="provisional"))
    on_change(store, Event("Condition", "c-flu"))
    assert _tasks(store) == []
    save(store, condition("c-flu", "p-x", "I10"))
    on_change(store, Event("Condition", "c-flu", 2, "update"))
    assert _tasks(store) == []


def test_notifiable_codes_follow_the_classes():
    assert casereport.notifiable("A00.9").disease_class == "A"
    assert casereport.notifiable("A00.9").hours == 2
    assert casereport.notifiable("J09").hours == 2  # class B managed as class A
    assert casereport.notifiable("B08.4").disease == "Hand, foot and mouth disease"
    assert casereport.notifiable("B08.1") is None
    assert casereport.notifiable("I10") is None
