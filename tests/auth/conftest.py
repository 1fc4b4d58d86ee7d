"""Fixtures of the security tests: a store with clean security tables, and the policy test world."""
from __future__ import annotations

import pytest

from tests.auth import world
from tests.auth.security_tables import reset_security_tables
from tests.conftest import scratch_database


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing():
    """Argon2's cheapest profile: the tests check logic, not the cost of guessing."""
    from ihs.auth.passwords import use_profile

    use_profile("CHEAPEST")
    yield
    use_profile()


@pytest.fixture(scope="session")
def signing_key():
    """One token-signing key for the whole run (generating RSA keys is slow)."""
    from ihs.auth.keys import SigningKey, _new_key

    return SigningKey(_new_key())


@pytest.fixture
def secure_store(store):
    """The `store` fixture with empty auth and audit tables."""
    reset_security_tables(store)
    return store


@pytest.fixture
def sqlite_store(tmp_path):
    """A new SQLite store with the security tables: for logic that does not depend on the backend."""
    from ihs.store.store import Store

    store = Store(f"sqlite:///{tmp_path}/ihs.db")
    store.create_schema()
    reset_security_tables(store)
    yield store
    store.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world_store(request, tmp_path_factory):
    """A store holding tests/auth/world.py's network, built once per module and backend."""
    from ihs.store.store import Store

    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path_factory.mktemp('world')}/ihs.db")
        store.create_schema()
        reset_security_tables(store)
        world.load(store)
        yield store
        store.dispose()
        return
    with scratch_database(request.getfixturevalue("postgres_server"), "authworld") as url:
        store = Store(url)
        store.create_schema()
        reset_security_tables(store)
        world.load(store)
        yield store
        store.dispose()
