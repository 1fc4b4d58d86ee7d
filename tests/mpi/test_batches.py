"""Registrations linked in batches, one unit of work per dispatcher round, decide exactly as one at a time."""
from __future__ import annotations

from types import SimpleNamespace

from ihs.events import EventBus
from ihs.events.outbox import MAX_ATTEMPTS, OutboxDispatcher
from ihs.mpi import review
from ihs.mpi.changes import on_patient_change, on_patient_changes, subscribe_all
from ihs.mpi.chinese import generate
from ihs.mpi.features import GOLDEN_TAG
from ihs.mpi.index import forget, golden_id_of
from ihs.store import search
from ihs.store.store import Store

GOLDEN = f"{GOLDEN_TAG['system']}|{GOLDEN_TAG['code']}"


def registrations(people: int = 45) -> list[dict]:
    patients, _ = generate(people, seed=11)
    return patients


def register(store: Store, patients: list[dict]) -> list[SimpleNamespace]:
    """Commit the Patients as a registration desk does; answers their change events."""
    with store.session(write=True) as uow:
        stored = [uow.create(dict(p)) for p in patients]
    return [SimpleNamespace(res_type="Patient", res_id=s.id, version=s.version, interaction="create") for s in stored]


def outcome(store: Store) -> tuple[set, set, list]:
    """What linking decided, free of generated ids: who shares a golden record, each golden record's
    content, and the review Tasks by record and candidate person."""
    with store.session() as uow:
        sources = [s.resource() for s in search.find(uow, "Patient", [("_tag:not", GOLDEN)], limit=1000)]
        goldens = {s.id: s.resource() for s in search.find(uow, "Patient", [("_tag", GOLDEN)], limit=1000)}
        tasks = [s.resource() for s in search.find(uow, "Task", [("code", f"{review.MPI_CODES}|review-match")],
                                                    limit=1000)]
    members: dict[str, set[str]] = {}
    for source in sources:
        members.setdefault(golden_id_of(source), set()).add(source["id"])
    people = {frozenset(ids) for ids in members.values()}
    contents = set()
    for golden_id, golden in goldens.items():
        content = {k: v for k, v in golden.items() if k not in ("id", "meta")}
        contents.add((frozenset(members.get(golden_id, ())), repr(sorted(content.items()))))
    person_of = {record: ids for ids in members.values() for record in ids}
    reviews = sorted((review.record_of(t), sorted(members.get(review.candidate_of(t))
                                                   or person_of.get(review.candidate_of(t), ())))
                     for t in tasks)
    return people, contents, reviews


def test_batches_link_exactly_as_one_registration_at_a_time(store, tmp_path):
    patients = registrations()
    one_by_one = Store(f"sqlite:///{tmp_path}/one-by-one.db")
    one_by_one.create_schema()
    try:
        singles = [on_patient_change(one_by_one, event) for event in register(one_by_one, patients)]
        batches = []
        events = register(store, patients)
        for start in range(0, len(events), 16):  # batches that cut through people's records
            batches += on_patient_changes(store, events[start:start + 16])
        assert [(d.record_id, d.action, len(d.reviews)) for d in batches] == [
            (d.record_id, d.action, len(d.reviews)) for d in singles]
        expected = outcome(one_by_one)
        assert len(expected[0]) < len(patients)  # some people were registered more than once
        assert outcome(store) == expected
    finally:
        forget(one_by_one)
        one_by_one.dispose()


def test_a_batch_writes_each_golden_record_once(store):
    patients, truth = generate(45, seed=11)
    person = next(n for n in truth.values() if list(truth.values()).count(n) == 3)
    patients = [p for p in patients if truth[p["id"]] == person]  # one person's three records
    on_patient_changes(store, register(store, patients))
    with store.session() as uow:
        golden = search.find(uow, "Patient", [("_tag", GOLDEN)])
    assert len(golden) == 1 and golden[0].version == 1


def test_the_index_own_writes_are_not_matched_again(store):
    events = register(store, registrations(6))
    on_patient_changes(store, events)
    with store.session() as uow:
        written = [SimpleNamespace(res_type="Patient", res_id=s.id, version=s.version)
                   for s in search.find(uow, "Patient", [], limit=100)]
    assert on_patient_changes(store, written) == []
    # after a restart the same events are matched again, and change nothing
    forget(store)
    again = on_patient_changes(store, written)
    assert again and {d.action for d in again} <= {"unchanged", "skipped"}
    with store.session() as uow:
        assert {s.id: s.version for s in search.find(uow, "Patient", [], limit=100)} == {
            e.res_id: e.version for e in written}


def test_the_dispatcher_hands_a_round_to_the_batch_handler_and_keeps_events_until_it_succeeds(store):
    bus = EventBus()
    subscribe_all(bus.subscribe)
    handler = bus.subscriptions["ihs.mpi.changes.on_patient_changes"]
    assert handler.batch

    def worker_dies(s, events):
        raise RuntimeError("worker stopped")

    bus.subscribe(worker_dies, types={"Patient"}, name=handler.name, batch=True)
    patients = registrations(8)
    register(store, patients)
    assert OutboxDispatcher(store, bus).dispatch_pending() == 0
    assert len(store.pending_events()) == len(patients)  # nothing is lost: the events wait in the outbox

    bus.subscriptions[handler.name] = handler  # the worker restarts
    dispatcher = OutboxDispatcher(store, bus)
    while dispatcher.dispatch_pending():
        pass
    assert store.pending_events() == []
    with store.session() as uow:
        sources = search.find(uow, "Patient", [("_tag:not", GOLDEN)], limit=100)
    assert len(sources) == len(patients) and all(golden_id_of(s.resource()) for s in sources)


def test_a_failing_batch_handler_holds_back_only_its_own_events(store):
    seen, handled = [], []
    down = [True]
    bus = EventBus()
    bus.subscribe(lambda s, e: seen.append(e.res_id), types={"Observation"})

    def downstream(s, events):
        if down[0]:
            raise ConnectionError("downstream unavailable")
        handled.extend(e.res_id for e in events)

    bus.subscribe(downstream, types={"Patient"}, batch=True)
    with store.session(write=True) as uow:
        observations = [uow.create({"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}}).id
                        for _ in range(2)]
        patients = [uow.create({"resourceType": "Patient"}).id for _ in range(5)]
    dispatcher = OutboxDispatcher(store, bus)
    assert dispatcher.dispatch_pending() == 2  # the Observations before the failed batch go out
    assert seen == observations and handled == []
    down[0] = False
    assert dispatcher.dispatch_pending() == 5
    assert handled == patients


def test_an_event_that_always_fails_is_given_up_alone_and_the_rest_of_its_batch_delivered(store):
    handled = []
    bus = EventBus()
    with store.session(write=True) as uow:
        patients = [uow.create({"resourceType": "Patient"}).id for _ in range(4)]

    def poisoned(s, events):
        if patients[1] in {e.res_id for e in events}:
            raise ValueError("cannot handle this one")
        handled.extend(e.res_id for e in events)

    bus.subscribe(poisoned, types={"Patient"}, batch=True)
    dispatcher = OutboxDispatcher(store, bus)
    delivered = sum(dispatcher.dispatch_pending() for _ in range(MAX_ATTEMPTS))
    assert delivered == 4 and store.pending_events() == []
    assert sorted(set(handled)) == sorted(set(patients) - {patients[1]})
