"""The outbox dispatcher: publishes committed changes from the outbox table to the event bus.

A change and its outbox row commit together, so a worker that dies between the commit and the
delivery loses nothing: the row stays undispatched until a dispatcher publishes it. One
dispatcher runs per database (a PostgreSQL advisory lock, or a lock file beside the SQLite file);
other worker processes stand by and take over if it dies.
"""
from __future__ import annotations

import fcntl
import logging
import threading
from pathlib import Path

from sqlalchemy import text

from ihs.events import ChangeEvent, EventBus, bus as default_bus

log = logging.getLogger("ihs.events")
ADVISORY_LOCK_KEY = 0x1A5_0B0C  # the dispatcher's PostgreSQL advisory lock
MAX_ATTEMPTS = 5


class OutboxDispatcher:
    def __init__(self, store, bus: EventBus | None = None, *, interval: float = 0.5, pace: float = 0.05):
        self.store = store
        self.bus = bus or default_bus
        self.interval = interval
        self.pace = pace  # at most one round per `pace` seconds, however many commits wake it
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._attempts: dict[tuple[int, str], int] = {}
        self._lock_handle = None

    # -- one round ---------------------------------------------------------------------------

    def dispatch_pending(self, limit: int = 500) -> int:
        """Publish up to `limit` pending changes; returns how many were marked dispatched."""
        events = [ChangeEvent(*row) for row in self.store.pending_events(limit)]
        deliverable = len(events)  # a batch handler that fails holds back the event it failed on and the rest
        for subscription in self.bus.batched():
            wanted = [e for e in events if subscription.wants(e)]
            if not wanted:
                continue
            try:
                subscription.handler(self.store, wanted)
                continue
            except Exception:
                log.exception("batch handler failed; delivering its events one at a time", extra={"fields": {
                    "handler": subscription.name, "events": len(wanted), "seq": wanted[0].seq}})
            for event in wanted:  # so that an event that always fails is given up alone
                if not self._call(subscription, event, [event]):
                    deliverable = min(deliverable, events.index(event))
                    break
        done = []
        for event in events[:deliverable]:
            if not self._deliver(event):
                break  # keep order: later events wait until this one is delivered
            done.append(event.seq)
        self.store.mark_dispatched(done)
        return len(done)

    def _deliver(self, event: ChangeEvent) -> bool:
        delivered = True
        for subscription in self.bus.interested(event):
            delivered = self._call(subscription, event, event) and delivered
        return delivered

    def _call(self, subscription, event: ChangeEvent, argument) -> bool:
        """Run one handler (a failing one must not stop the others); False while it should be retried."""
        key = (event.seq, subscription.name)
        try:
            subscription.handler(self.store, argument)
            self._attempts.pop(key, None)
            return True
        except Exception:
            attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
            log.exception("event handler failed", extra={"fields": {
                "handler": subscription.name, "event": event.reference, "seq": event.seq, "attempt": attempts}})
            if attempts < MAX_ATTEMPTS:
                return False
            log.error("event given up after %d attempts", attempts, extra={"fields": {
                "handler": subscription.name, "event": event.reference, "seq": event.seq}})
            return True

    # -- running in the background ----------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> "OutboxDispatcher":
        self.store.after_commit.append(self.wake)
        self._thread = threading.Thread(target=self._run, name="outbox-dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        if self.wake in self.store.after_commit:
            self.store.after_commit.remove(self.wake)
        self._release()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._acquire():
                try:
                    while self.dispatch_pending() and not self._stop.is_set():
                        self._stop.wait(self.pace)  # a backlog in paced rounds: requests get the write lock between
                except Exception:
                    log.exception("outbox dispatch failed; retrying")
            self._stop.wait(self.pace)
            self._wake.wait(self.interval)
            self._wake.clear()

    def _acquire(self) -> bool:
        if self._lock_handle is not None:
            return True
        if self.store.dialect == "postgresql":
            conn = self.store.engine.connect()
            if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar():
                conn.commit()
                self._lock_handle = conn
                return True
            conn.close()
            return False
        database = self.store.engine.url.database
        path = Path(f"{database}.dispatcher.lock") if database and database != ":memory:" else None
        if path is None:
            self._lock_handle = True
            return True
        handle = path.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_handle = handle
        return True

    def _release(self) -> None:
        handle, self._lock_handle = self._lock_handle, None
        if handle is None or handle is True:
            return
        if self.store.dialect == "postgresql":
            # The connection goes back to the pool, so the session-level lock must be let go explicitly.
            handle.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            handle.commit()
        handle.close()
