"""The event bus: every committed change, delivered to the handlers that subscribed to it.

Changes reach the bus from the outbox (ihs/events/outbox.py), so delivery is at least once:
a handler may see an event again after a crash and must be idempotent.
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

    def wants(self, event: ChangeEvent) -> bool:
        return self.types is None or event.res_type in self.types


class EventBus:
    """Subscriptions by name; `publish` calls each interested handler."""

    def __init__(self):
        self.subscriptions: dict[str, Subscription] = {}

    def subscribe(self, handler: Handler, *, types: set[str] | None = None, name: str | None = None) -> None:
        name = name or f"{handler.__module__}.{handler.__qualname__}"
        self.subscriptions[name] = Subscription(name, handler, frozenset(types) if types else None)

    def interested(self, event: ChangeEvent) -> list[Subscription]:
        return [s for s in self.subscriptions.values() if s.wants(event)]


bus = EventBus()


def subscribe(handler: Handler, *, types: set[str] | None = None, name: str | None = None) -> None:
    """Subscribe `handler(store, event)` to changes of `types` (all types when None) on the default bus."""
    bus.subscribe(handler, types=types, name=name)
