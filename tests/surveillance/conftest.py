"""Fixtures of the surveillance tests: a store whose syndromic counts start empty."""
from __future__ import annotations

import pytest

from ihs.surveillance import counts


@pytest.fixture
def surveillance_store(store):
    counts.clear(store)  # the derived table outlives the store fixture's truncation on PostgreSQL
    yield store
    counts.clear(store)
