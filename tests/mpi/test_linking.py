"""Golden records, links, review Tasks and the change handlers, on SQLite and PostgreSQL."""
from __future__ import annotations

from types import SimpleNamespace

from ihs.fhir.validation import validate
from ihs.mpi import review
from ihs.mpi.changes import on_patient_change, on_patient_changes, on_task_change, on_task_changes
from ihs.mpi.features import is_golden
from ihs.mpi.idnumber import RESIDENT_ID_SYSTEM
from ihs.mpi.index import golden_id_of, index_for
from ihs.mpi.rebuild import rebuild
from ihs.store import search

ADDRESS = [{"line": ["爱山街道", "人民路12号"], "district": "吴兴区", "city": "湖州市", "postalCode": "313000"}]


def patient(pid: str, org: str, **fields) -> dict:
    resource = {"resourceType": "Patient", "id": pid, "managingOrganization": {"reference": f"Organization/{org}"},
                "name": [{"family": "李", "given": ["建国"]}], "gender": "male", "birthDate": "1956-03-08",
                "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": "330502195603080017"}], "address": ADDRESS}
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def register(store, resource: dict):
    validate(resource)
    with store.session(write=True) as uow:
        uow.create(resource)
    return on_patient_change(store, SimpleNamespace(res_type="Patient", res_id=resource["id"], version=1,
                                                    interaction="create"))


def read(store, res_type: str, res_id: str):
    with store.session() as uow:
        return uow.current(res_type, res_id)


def test_three_registrations_of_one_person_share_one_golden_record(store):
    register(store, patient("centre-1", "centre"))
    register(store, patient("county-1", "county", name=[{"family": "Li", "given": ["Jianguo"]}]))
    decision = register(store, patient("province-1", "province", birthDate="1956-08-03"))
    assert decision.action == "linked"
    golden_id = decision.golden_id
    golden = read(store, "Patient", golden_id).resource()
    assert is_golden(golden)
    assert [l["other"]["reference"] for l in golden["link"]] == [
        "Patient/centre-1", "Patient/county-1", "Patient/province-1"]
    assert {l["type"] for l in golden["link"]} == {"seealso"}
    for source in ("centre-1", "county-1", "province-1"):
        assert golden_id_of(read(store, "Patient", source).resource()) == golden_id
    assert golden["birthDate"] == "1956-03-08"  # two of three sources say so


def test_a_different_person_gets_a_golden_record_of_their_own(store):
    first = register(store, patient("a", "centre"))
    other = register(store, patient("b", "county", name=[{"family": "陈", "given": ["秀英"]}], gender="female",
                                    birthDate="1971-10-02", identifier=None))
    assert other.action == "own" and other.golden_id != first.golden_id


def test_redelivered_event_writes_nothing(store):
    register(store, patient("a", "centre"))
    register(store, patient("b", "county"))
    before = {pid: read(store, "Patient", pid).version for pid in ("a", "b")}
    again = on_patient_change(store, SimpleNamespace(res_type="Patient", res_id="b", version=1, interaction="create"))
    assert again.action == "unchanged"
    assert {pid: read(store, "Patient", pid).version for pid in ("a", "b")} == before


def test_probable_match_opens_one_review_task_and_confirming_links_by_hand(store):
    register(store, patient("a", "centre", identifier=None))
    decision = register(store, patient("b", "county", identifier=None, address=None, birthDate="1956-03-18",
                                       name=[{"family": "Li", "given": ["Jiangguo"]}]))
    assert decision.action == "own" and decision.reviews
    with store.session() as uow:
        tasks = review.reviews_of(uow, "b")
    assert len(tasks) == 1 and tasks[0]["status"] == "requested"
    on_patient_change(store, SimpleNamespace(res_type="Patient", res_id="b", version=2, interaction="update"))
    with store.session(write=True) as uow:
        assert len(review.reviews_of(uow, "b")) == 1  # not opened twice
        stored = uow.current("Task", tasks[0]["id"])
        uow.update(dict(stored.resource(), status="completed"), stored)
    golden_id = on_task_change(store, SimpleNamespace(res_type="Task", res_id=tasks[0]["id"], version=2,
                                                      interaction="update"))
    a, b = read(store, "Patient", "a").resource(), read(store, "Patient", "b").resource()
    assert golden_id_of(a) == golden_id_of(b) == golden_id
    assert b["link"][0]["extension"][0]["valueCode"] == "manual"


def test_rejected_review_keeps_the_records_apart(store):
    register(store, patient("a", "centre", identifier=None))
    register(store, patient("b", "county", identifier=None, address=None, birthDate="1956-03-18",
                            name=[{"family": "Li", "given": ["Jiangguo"]}]))
    with store.session(write=True) as uow:
        task = review.reviews_of(uow, "b")[0]
        stored = uow.current("Task", task["id"])
        uow.update(dict(task, status="rejected"), stored)
    on_task_change(store, SimpleNamespace(res_type="Task", res_id=task["id"], version=2, interaction="update"))
    a, b = read(store, "Patient", "a").resource(), read(store, "Patient", "b").resource()
    assert golden_id_of(a) != golden_id_of(b)


def test_a_round_of_task_changes_answers_the_answered_reviews_and_leaves_the_rest_alone(store):
    register(store, patient("a", "centre", identifier=None))
    register(store, patient("b", "county", identifier=None, address=None, birthDate="1956-03-18",
                            name=[{"family": "Li", "given": ["Jiangguo"]}]))
    other = {"resourceType": "Task", "id": "other", "status": "completed", "intent": "order"}
    with store.session(write=True) as uow:
        task = review.reviews_of(uow, "b")[0]
        uow.create(other)
    events = [SimpleNamespace(res_type="Task", res_id=i, version=1, interaction="create") for i in ("other", task["id"])]
    pending = len(store.pending_events())
    assert on_task_changes(store, events) == []  # a review just opened and a Task of another kind: nothing to do
    assert len(store.pending_events()) == pending
    with store.session(write=True) as uow:
        stored = uow.current("Task", task["id"])
        uow.update(dict(stored.resource(), status="completed"), stored)
    [golden_id] = on_task_changes(store, events)
    assert golden_id_of(read(store, "Patient", "a").resource()) == golden_id_of(
        read(store, "Patient", "b").resource()) == golden_id


def test_deleting_the_last_source_retires_its_golden_record(store):
    decision = register(store, patient("a", "centre"))
    with store.session(write=True) as uow:
        uow.delete(uow.current("Patient", "a"))
    removed = on_patient_change(store, SimpleNamespace(res_type="Patient", res_id="a", version=3,
                                                       interaction="delete"))
    assert removed.action == "removed"
    assert read(store, "Patient", decision.golden_id).resource()["active"] is False


def test_rebuild_trains_saves_the_model_and_links_everyone(store):
    from ihs.mpi.chinese import generate

    patients, truth = generate(60, seed=5)
    with store.session(write=True) as uow:
        for resource in patients:
            uow.create(resource)
    report = rebuild(store, progress=False)
    assert report.records == len(patients) and report.golden_records >= 55
    assert read(store, "Binary", "mpi-model") is not None
    index = index_for(store)
    wrong = [pid for pid in index.golden_of for other in index.members(index.golden_of[pid])
             if truth[other] != truth[pid]]
    assert not wrong
    assert len(index.golden_of) == len(patients)


def test_batch_handler_links_many_in_one_transaction(store):
    with store.session(write=True) as uow:
        for pid, org in (("a", "centre"), ("b", "county"), ("c", "province")):
            uow.create(patient(pid, org))
    events = [SimpleNamespace(res_type="Patient", res_id=pid) for pid in "abc"]
    decisions = on_patient_changes(store, events)
    assert len({d.golden_id for d in decisions}) == 1
    with store.session() as uow:
        goldens = search.find(uow, "Patient", [("_tag", "https://ihs.example.org/fhir/CodeSystem/mpi-record|golden")])
    assert len(goldens) == 1
