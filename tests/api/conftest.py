"""Fixtures shared by the API tests."""
from __future__ import annotations

import pytest

from ihs.auth import policy
from tests.auth import world


@pytest.fixture
def network(client, store):
    """The client over tests/auth/world.py's network, with the policy's caches empty."""
    world.load(store)
    policy.default_policy().forget()
    yield client
    policy.default_policy().forget()
