"""Syndromic counts kept from the outbox: classification, strata, idempotence, rebuild."""
from __future__ import annotations

from datetime import date

from ihs.surveillance import counts
from ihs.surveillance.changes import on_change
from tests.surveillance.records import Event, condition, encounter, patient, save


def test_encounter_with_influenza_diagnosis_counts_as_ili_in_its_district(surveillance_store):
    store = surveillance_store
    save(store, patient("p1", gender="male", birth="2015-03-01", district="南浔区"))
    save(store, condition("c1", "p1", "J11.1", encounter_id="e1"))
    save(store, encounter("e1", "p1", "2024-01-10"))
    on_change(store, Event("Encounter", "e1"))
    ili = counts.daily_counts(store, "ili", date(2024, 1, 1), date(2024, 1, 31), by="district")
    assert ili == {(date(2024, 1, 10), "南浔区"): 1}
    strata = counts.daily_counts(store, "ili", date(2024, 1, 10), date(2024, 1, 10), by="age_band")
    assert strata == {(date(2024, 1, 10), "5-14"): 1}
    assert counts.series(store, counts.ALL_VISITS, date(2024, 1, 9), date(2024, 1, 11)) == [0, 1, 0]


def test_chinese_chief_complaint_is_classified_without_a_diagnosis(surveillance_store):
    store = surveillance_store
    save(store, patient("p2"))
    save(store, encounter("e2", "p2", "2024-02-01", complaint="腹泻、呕吐2天"))
    on_change(store, Event("Encounter", "e2"))
    assert counts.series(store, "gastrointestinal", date(2024, 2, 1), date(2024, 2, 1)) == [1]
    assert counts.series(store, "ili", date(2024, 2, 1), date(2024, 2, 1)) == [0]


def test_same_event_twice_counts_once_and_a_late_diagnosis_reclassifies(surveillance_store):
    store = surveillance_store
    save(store, patient("p3"))
    save(store, encounter("e3", "p3", "2024-03-05", complaint="checkup"))
    on_change(store, Event("Encounter", "e3"))
    on_change(store, Event("Encounter", "e3"))
    assert counts.series(store, counts.ALL_VISITS, date(2024, 3, 5), date(2024, 3, 5)) == [1]
    assert counts.series(store, "rash", date(2024, 3, 5), date(2024, 3, 5)) == [0]
    save(store, condition("c3", "p3", "B05.9", encounter_id="e3"))
    on_change(store, Event("Condition", "c3"))
    on_change(store, Event("Condition", "c3"))
    assert counts.series(store, "rash", date(2024, 3, 5), date(2024, 3, 5)) == [1]


def test_deleted_encounter_leaves_the_counts(surveillance_store):
    store = surveillance_store
    save(store, patient("p4"))
    save(store, encounter("e4", "p4", "2024-04-01", complaint="fever and cough"))
    on_change(store, Event("Encounter", "e4"))
    with store.session(write=True) as uow:
        uow.delete(uow.current("Encounter", "e4"))
    on_change(store, Event("Encounter", "e4", 2, "delete"))
    assert counts.series(store, "ili", date(2024, 4, 1), date(2024, 4, 1)) == [0]


def test_rebuild_recounts_from_the_records(surveillance_store):
    store = surveillance_store
    save(store, patient("p5"))
    for i in range(3):
        save(store, encounter(f"e5-{i}", "p5", f"2024-05-0{i + 1}", complaint="sore throat"))
    save(store, {**encounter("e5-x", "p5", "2024-05-09"), "status": "cancelled"})
    assert counts.series(store, "respiratory", date(2024, 5, 1), date(2024, 5, 3)) == [0, 0, 0]
    assert counts.rebuild(store, page=2) == 3
    assert counts.series(store, "respiratory", date(2024, 5, 1), date(2024, 5, 3)) == [1, 1, 1]


def test_a_patient_who_moves_takes_their_visits_to_the_new_district(surveillance_store):
    store = surveillance_store
    save(store, patient("p6", district="长兴县"))
    save(store, encounter("e6", "p6", "2024-06-01", complaint="rash"))
    on_change(store, Event("Encounter", "e6"))
    save(store, patient("p6", district="安吉县"))
    on_change(store, Event("Patient", "p6", 2, "update"))
    assert counts.daily_counts(store, "rash", date(2024, 6, 1), date(2024, 6, 1), by="district") == \
        {(date(2024, 6, 1), "安吉县"): 1}
