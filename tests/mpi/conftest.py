"""A fresh in-memory index for every test (the PostgreSQL store is reused, emptied, between tests)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_index(request):
    if "store" in request.fixturenames:
        from ihs.mpi.index import forget

        forget(request.getfixturevalue("store"))
    yield
