"""The policy's cache of relationships and Consents follows changes made by any worker on the database."""
from __future__ import annotations

import pytest

from ihs.auth import policy_version
from ihs.auth.config import PolicyConfig
from ihs.auth.policy import Policy
from ihs.store.store import Store
from tests.auth import world
from tests.auth.security_tables import reset_security_tables


@pytest.fixture
def two_workers(store):
    """Two Store instances on one database, as two `ihs serve` worker processes hold them."""
    reset_security_tables(store)
    world.load(store)
    other = Store(store.engine.url.render_as_string(hide_password=False))
    yield store, other
    other.dispose()


def _reads(policy, store, resource) -> bool:
    with store.session() as uow:
        return policy.decide(world.principal("doctorA"), "read", "Observation", resource, uow).allowed


def test_a_consent_written_by_another_worker_applies_at_once(two_workers):
    mine, theirs = two_workers
    cached = Policy(PolicyConfig(cache_seconds=3600, default_sharing="opt-out"))  # only a change empties it
    resources = {r["id"]: r for r in world.resources()}
    observation = resources["obs-rel-B"]
    assert _reads(cached, mine, observation)  # relationship, no Consent: the opt-out region shares
    assert _reads(cached, mine, observation)  # now from the cache
    with theirs.session(write=True) as uow:
        uow.create(world.consent("consent-rel-objects", "rel", {"type": "deny"}))
    assert not _reads(cached, mine, observation)


def test_a_relationship_ended_by_another_worker_applies_at_once(two_workers):
    mine, theirs = two_workers
    cached = Policy(PolicyConfig(cache_seconds=3600, default_sharing="opt-out"))
    resources = {r["id"]: r for r in world.resources()}
    observation = resources["obs-permit-B"]
    assert _reads(cached, mine, observation)
    with theirs.session() as uow:
        encounter = uow.current("Encounter", "enc-permit").resource()
    encounter["status"] = "cancelled"
    with theirs.session(write=True) as uow:
        uow.update(encounter, uow.current("Encounter", "enc-permit"))
    assert not _reads(cached, mine, observation)


def test_changes_to_other_types_leave_the_cache_alone(two_workers):
    mine, theirs = two_workers
    with mine.engine.connect() as conn:
        before = policy_version.current(conn)
    with theirs.session(write=True) as uow:
        uow.create(world.observation("obs-unrelated", "rel", "hB"))
    with mine.engine.connect() as conn:
        assert policy_version.current(conn) == before
    with theirs.session(write=True) as uow:
        uow.create(world.consent("consent-more", "none", {"type": "deny"}))
        uow.create(world.consent("consent-again", "old", {"type": "deny"}))
    with mine.engine.connect() as conn:
        assert policy_version.current(conn) > before
