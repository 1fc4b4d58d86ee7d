"""The outbox dispatcher delivers every committed change, in order, at least once."""
from __future__ import annotations

import time

from ihs.events import EventBus
from ihs.events.outbox import MAX_ATTEMPTS, OutboxDispatcher


def _create(store, n=1, res_type="Patient"):
    ids = []
    with store.session(write=True) as uow:
        for _ in range(n):
            ids.append(uow.create({"resourceType": res_type}).id)
    return ids


def test_dispatch_delivers_committed_changes_in_order_once(store):
    seen = []
    bus = EventBus()
    bus.subscribe(lambda s, e: seen.append((e.res_id, e.interaction, e.version)), types={"Patient"})
    ids = _create(store, 3)
    _create(store, 1, "Observation")
    dispatcher = OutboxDispatcher(store, bus)
    assert dispatcher.dispatch_pending() == 4
    assert seen == [(i, "create", 1) for i in ids]
    assert dispatcher.dispatch_pending() == 0
    assert store.pending_events() == []


def test_rolled_back_changes_are_never_published(store):
    try:
        with store.session(write=True) as uow:
            uow.create({"resourceType": "Patient"})
            raise RuntimeError("the request failed")
    except RuntimeError:
        pass
    assert store.pending_events() == []


def test_a_failing_handler_is_retried_and_holds_later_events_back(store):
    calls = []
    bus = EventBus()

    def flaky(s, event):
        calls.append(event.res_id)
        if len(calls) == 1:
            raise ValueError("downstream unavailable")

    bus.subscribe(flaky)
    first, second = _create(store, 2)
    dispatcher = OutboxDispatcher(store, bus)
    assert dispatcher.dispatch_pending() == 0
    assert dispatcher.dispatch_pending() == 2
    assert calls == [first, first, second]


def test_a_handler_that_always_fails_is_given_up_after_max_attempts(store):
    bus = EventBus()
    bus.subscribe(lambda s, e: 1 / 0)
    _create(store)
    dispatcher = OutboxDispatcher(store, bus)
    results = [dispatcher.dispatch_pending() for _ in range(MAX_ATTEMPTS)]
    assert results[-1] == 1 and sum(results) == 1


def test_background_dispatcher_is_woken_by_commits(store):
    seen = []
    bus = EventBus()
    bus.subscribe(lambda s, e: seen.append(e.res_id))
    dispatcher = OutboxDispatcher(store, bus, interval=30).start()
    try:
        [created] = _create(store)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == [created]
    finally:
        dispatcher.stop()


def test_only_one_dispatcher_holds_the_lock(store):
    first, second = OutboxDispatcher(store, EventBus()), OutboxDispatcher(store, EventBus())
    try:
        assert first._acquire()
        assert not second._acquire() or store.engine.url.database in (None, ":memory:")
    finally:
        first._release()
        second._release()
    assert second._acquire()
    second._release()
