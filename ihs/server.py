"""Building the running server: the store from configuration, its schema, the ASGI app."""
from __future__ import annotations

import os

from ihs.api.app import create_app
from ihs.store.store import Store


def open_store(url: str | None = None) -> Store:
    """The configured store with its schema in place."""
    store = Store(url)
    store.create_schema()
    return store


def app_from_env():
    """ASGI factory used by `ihs serve` (each worker process builds its own store and pool)."""
    return create_app(open_store(os.environ.get("IHS_DATABASE_URL")), base_url=os.environ.get("IHS_BASE_URL"))
