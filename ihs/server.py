"""Building the running server: the store from configuration, its schema, the event wiring, the app."""
from __future__ import annotations

import os
from contextlib import asynccontextmanager

from ihs import events
from ihs.api.app import create_app
from ihs.api.security import close_audit_writer
from ihs.audit import create_audit_schema
from ihs.auth.schema import create_auth_schema
from ihs.events.outbox import OutboxDispatcher
from ihs.auth import policy
from ihs.mpi import changes as mpi_changes
from ihs.store.reindex import register_stored
from ihs.store.store import Store
from ihs.surveillance import changes as surveillance_changes


# Set by `ihs serve --unsecured-benchmark` (loopback only): the same server without security, to measure its cost.
UNSECURED_BENCHMARK = "IHS_UNSECURED_BENCHMARK"


def open_store(url: str | None = None) -> Store:
    """The configured store with its schema (and the security tables beside it) in place."""
    store = Store(url)
    store.create_schema()
    create_auth_schema(store.engine)
    create_audit_schema(store.engine)
    return store


def start_filing(url: str):
    """Under several workers: file every worker's read audits in a process of their own.

    The workers then spend no CPU on filing (ihs/audit/filer.py); they inherit the setting.
    """
    import logging
    import multiprocessing

    from ihs.audit.filer import SUPERVISOR, run_filing_process
    from ihs.audit.writer import durability_from_env

    os.environ[SUPERVISOR] = "supervisor"
    process = multiprocessing.get_context("spawn").Process(
        target=run_filing_process, name="ihs-audit-filer",
        args=(url, durability_from_env(), logging.getLogger().level))
    process.start()
    return process


def stop_filing(process) -> None:
    """File what the workers left, then end the filing process (the workers have stopped)."""
    process.terminate()  # SIGTERM: one more round, then it exits
    process.join(120)
    if process.is_alive():
        process.kill()


def subscribe_handlers() -> None:
    """The platform's reactions to committed changes, on the default event bus."""
    mpi_changes.subscribe_all(events.subscribe)
    events.subscribe(surveillance_changes.on_change, types=surveillance_changes.TYPES)
    events.subscribe(policy.on_change, types=set(policy.RELATIONSHIP_TYPES))


def app_from_env():
    """ASGI factory used by `ihs serve` (each worker process builds its own store, pool and dispatcher)."""
    store = open_store(os.environ.get("IHS_DATABASE_URL"))
    register_stored(store)  # user-defined SearchParameters are indexed by every worker from its first write

    subscribe_handlers()

    @asynccontextmanager
    async def lifespan(app):
        dispatcher = OutboxDispatcher(store).start()
        try:
            yield
        finally:
            dispatcher.stop()
            close_audit_writer(store)
            store.dispose()

    unsecured = os.environ.get(UNSECURED_BENCHMARK) == "1"
    return create_app(store, base_url=os.environ.get("IHS_BASE_URL"), lifespan=lifespan, secured=not unsecured)
