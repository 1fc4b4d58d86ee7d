"""The event bus: every committed change, delivered to the handlers that subscribed to it.

Changes reach the bus from the outbox (ihs/events/outbox.py), so delivery is at least once:
a handler may see an event again after a crash and must be idempotent. A handler subscribed with
`batch=True` takes `(store, events)`: the events of one dispatcher round it wants, in order, so
it can handle them in one transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ChangeEvent:
    seq: int
    res_type: str
    res_id: str
    version: int
    interaction: str  # create | update | delete
    created_at: int  # microseconds since the epoch

    @property
    def reference(self) -> str:
        return f"{self.res_type}/{self.res_id}"


Handler = Callable[[object, ChangeEvent], None]


@dataclass(frozen=True)
class Subscription:
    name: str
    handler: Handler
    types: frozenset[str] | None  # None: every resource type
    batch: bool = False  # the handler takes a list of events

    def wants(self, event: ChangeEvent) -> bool:
        return self.types is None or event.res_type in self.types


class EventBus:
    """Subscriptions by name; `publish` calls each interested handler."""

    def __init__(self):
        self.subscriptions: dict[str, Subscription] = {}

    def subscribe(self, handler: Handler, *, types: set[str] | None = None, name: str | None = None,
                  batch: bool = False) -> None:
        name = name or f"{handler.__module__}.{handler.__qualname__}"
        self.subscriptions[name] = Subscription(name, handler, frozenset(types) if types else None, batch)

    def interested(self, event: ChangeEvent) -> list[Subscription]:
        """The subscriptions taking `event` one at a time."""
        return [s for s in self.subscriptions.values() if not s.batch and s.wants(event)]

    def batched(self) -> list[Subscription]:
        return [s for s in self.subscriptions.values() if s.batch]


bus = EventBus()


def subscribe(handler: Handler, *, types: set[str] | None = None, name: str | None = None,
              batch: bool = False) -> None:
    """Subscribe `handler(store, event)` (or `handler(store, events)` with `batch`) to changes of `types`
    (all types when None) on the default bus."""
    bus.subscribe(handler, types=types, name=name, batch=batch)
