"""Fixtures: every store test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

import pytest
from sqlalchemy import text

# Keys and read-audit journals of databases that have no file of their own (PostgreSQL) go here, not in the checkout.
os.environ.setdefault("IHS_DATA_DIR", tempfile.mkdtemp(prefix="ihs-test-data-"))
POSTGRES_URL = os.environ.get("IHS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> str | None:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server's admin URL; skips (fails in CI) when none is reachable."""
    problem = _postgres_reachable()
    if problem:
        if os.environ.get("IHS_REQUIRE_SERVICES"):
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable ({problem}); set IHS_TEST_POSTGRES_URL")
    return POSTGRES_URL


@contextmanager
def scratch_database(admin_url: str, label: str):
    """A new, empty PostgreSQL database of this test run's own, dropped afterwards."""
    import psycopg

    name = f"ihs_{label}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """A database of this test run's own, so concurrent runs on one server never meet."""
    with scratch_database(postgres_server, "test") as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_store(postgres_url):
    from ihs.store.store import Store

    store = Store(postgres_url)
    store.create_schema()
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """An empty store on each backend."""
    from ihs.store.schema import metadata
    from ihs.store.store import Store

    from ihs.api.security import close_audit_writer

    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path}/ihs.db")
        s.create_schema()
        yield s
        close_audit_writer(s)
        s.dispose()
        return
    s = request.getfixturevalue("_postgres_store")
    system_token(s)  # the security tables exist before they are emptied
    with s.engine.begin() as conn:
        from ihs.audit.chain import metadata as audit_metadata
        names = ", ".join(t.name for t in [*metadata.sorted_tables, *audit_metadata.sorted_tables])
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    yield s
    close_audit_writer(s)  # its threads must not write into the next test's TRUNCATE


SYSTEM_CLIENT = "test-system"


def system_token(store, base_url: str = "http://testserver") -> str:
    """A bearer token of a backend client allowed everything (system/*.*), as a hospital's HIS would hold."""
    from ihs.audit import create_audit_schema
    from ihs.auth import accounts, admin
    from ihs.auth.schema import create_auth_schema

    create_auth_schema(store.engine)
    create_audit_schema(store.engine)
    with store.engine.connect() as conn:
        known = accounts.get_client(conn, SYSTEM_CLIENT) is not None
    if not known:
        _, jwks = admin.generate_client_key()
        admin.add_client(store, SYSTEM_CLIENT, kind="backend", scopes="system/*.*", roles=("system",), jwks=jwks)
    return admin.issue_token(store, SYSTEM_CLIENT, base_url=base_url)["access_token"]


@pytest.fixture
def client(store):
    """An HTTP client for the FHIR API over `store`, authenticated as a trusted backend system."""
    from starlette.testclient import TestClient

    from ihs.api.app import create_app

    token = system_token(store)
    with TestClient(create_app(store, base_url="http://testserver"), raise_server_exceptions=False) as c:
        c.headers["Content-Type"] = "application/fhir+json"
        c.headers["Authorization"] = f"Bearer {token}"
        yield c
