"""Helpers of the master patient index's operation tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fresh_index(store):
    """Each test starts with the in-memory matching index of an empty store."""
    from ihs.mpi.index import forget

    forget(store)


def create(client, resource: dict) -> str:
    response = client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()["id"]
