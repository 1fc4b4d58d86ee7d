"""Fixtures shared by the API tests."""
from __future__ import annotations

import pytest
from sqlalchemy import delete

from ihs.auth import policy
from ihs.auth.schema import break_glass
from tests.auth import world


@pytest.fixture
def network(client, store):
    """The client over tests/auth/world.py's network, with the policy's caches empty and no emergency
    grants (the auth tables outlive a test on the shared PostgreSQL database)."""
    world.load(store)
    policy.default_policy().forget()
    with store.engine.begin() as conn:
        conn.execute(delete(break_glass))
    yield client
    policy.default_policy().forget()
