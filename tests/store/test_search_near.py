"""`near` on Location, as the R4 Location search parameters describe it:
`near=[latitude]|[longitude]|[distance]|[units]`, kilometres by default, from Location.position.

Every test runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from tests.store.search_helpers import found, put


def site(lid: str, latitude: float, longitude: float) -> dict:
    return {"resourceType": "Location", "id": lid, "name": lid,
            "position": {"latitude": latitude, "longitude": longitude}}


@pytest.fixture
def sites(store):
    put(store,
        site("dam-square", 52.3731, 4.8926),  # Amsterdam
        site("central-station", 52.3791, 4.9003),  # ~0.85 km from Dam Square
        site("schiphol", 52.3105, 4.7683),  # ~10.9 km
        site("utrecht", 52.0907, 5.1214),  # ~35.5 km
        site("london", 51.5074, -0.1278),  # ~358 km
        site("fiji-east", -17.0, 179.9), site("fiji-west", -17.0, -179.9),  # 21 km apart across the antimeridian
        {"resourceType": "Location", "id": "nowhere", "name": "no position"})
    return store


def test_near_matches_positions_within_the_distance_in_kilometres(sites):
    assert found(sites, "Location", "near=52.3731|4.8926|1|km") == {"dam-square", "central-station"}
    assert found(sites, "Location", "near=52.3731|4.8926|11") == {"dam-square", "central-station", "schiphol"}
    assert found(sites, "Location", "near=52.3731|4.8926|10.5") == {"dam-square", "central-station"}
    assert found(sites, "Location", "near=52.3731|4.8926|36|km") == {
        "dam-square", "central-station", "schiphol", "utrecht"}


def test_near_takes_other_units(sites):
    assert found(sites, "Location", "near=52.3731|4.8926|900|m") == {"dam-square", "central-station"}
    assert found(sites, "Location", "near=52.3731|4.8926|800|m") == {"dam-square"}
    assert found(sites, "Location", "near=52.3731|4.8926|7|[mi_i]") == {"dam-square", "central-station", "schiphol"}


def test_near_without_a_distance_means_a_few_kilometres(sites):
    assert found(sites, "Location", "near=52.3731|4.8926") == {"dam-square", "central-station"}


def test_near_works_across_the_antimeridian_and_far_away(sites):
    assert found(sites, "Location", "near=-17.0|179.95|30") == {"fiji-east", "fiji-west"}
    assert found(sites, "Location", "near=51.5|0|400") == {"london", "dam-square", "central-station", "schiphol",
                                                             "utrecht"}


def test_near_or_and_other_criteria(sites):
    assert found(sites, "Location", "near=52.3731|4.8926|1,51.5074|-0.1278|1") == {
        "dam-square", "central-station", "london"}
    assert found(sites, "Location", "near=52.3731|4.8926|1&name=central") == {"central-station"}


def test_a_moved_location_is_found_where_it_is_now(sites):
    with sites.session(write=True) as uow:
        uow.update(site("schiphol", 52.3731, 4.8930), uow.current("Location", "schiphol"))
    assert found(sites, "Location", "near=52.3731|4.8926|1") == {"dam-square", "central-station", "schiphol"}


def test_bad_points_are_refused(store):
    with pytest.raises(FhirError, match="latitude '95' is not a number"):
        found(store, "Location", "near=95|4|1")
    with pytest.raises(FhirError, match="units 'parsec' are not known"):
        found(store, "Location", "near=52|4|1|parsec")
    with pytest.raises(FhirError, match=r"\[latitude\]\|\[longitude\]"):
        found(store, "Location", "near=52")
