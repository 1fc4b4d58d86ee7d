"""_sort, _count, paging offsets, _total, system search (_type) and compartment search."""
from __future__ import annotations

import pytest

from ihs.fhir.errors import FhirError
from ihs.store.search import find
from ihs.store.search.run import plan
from tests.store.search_helpers import found, ids, put, result


@pytest.fixture
def births(store):
    put(store, *[{"resourceType": "Patient", "id": f"p{i}", "gender": "male" if i % 2 else "female",
                  "name": [{"family": family}], "birthDate": f"19{50 + i}-01-01"}
                 for i, family in enumerate(["Young", "Adams", "Baker", "Young", "Clark", "Adams"])],
        {"resourceType": "Patient", "id": "unborn", "name": [{"family": "Zed"}]})
    return store


def test_sort_ascending_and_descending(births):
    assert ids(births, "Patient", "_sort=birthdate") == ["p0", "p1", "p2", "p3", "p4", "p5", "unborn"]
    assert ids(births, "Patient", "_sort=-birthdate") == ["p5", "p4", "p3", "p2", "p1", "p0", "unborn"]


def test_sort_by_several_keys(births):
    assert ids(births, "Patient", "_sort=family,-birthdate") == ["p5", "p1", "p2", "p4", "p3", "p0", "unborn"]
    assert ids(births, "Patient", "_sort=gender,_id&gender:missing=false") == ["p0", "p2", "p4", "p1", "p3", "p5"]


def test_sort_on_token_and_id(births):
    assert ids(births, "Patient", "_sort=-_id&_count=2") == ["unborn", "p5"]


def test_sort_by_a_composite_is_an_error(store):
    with pytest.raises(FhirError, match="cannot order"):
        ids(store, "Observation", "_sort=code-value-quantity")


def test_count_and_offset_page_through_without_gaps_or_overlap(births):
    pages, offset = [], 0
    while True:
        answer = result(births, "Patient", f"_sort=family&_count=3&_offset={offset}")
        pages.append([m.id for m in answer.matches])
        if not answer.has_next:
            break
        offset += len(answer.matches)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == ids(births, "Patient", "_sort=family")


def test_total_is_accurate_by_default_when_cheap(births):
    assert result(births, "Patient", "_count=2").total == 7
    assert result(births, "Patient", "gender=male&_count=1").total == 3
    assert result(births, "Patient", "gender=male").total == 3


def test_a_driven_search_with_probes_pages_in_order_and_counts_only_when_asked(births):
    # one test drives, the other is probed per candidate: on PostgreSQL the page is staged (paging.py)
    query = "family=adams,young,baker&gender=male&_count=1"
    pages, offset = [], 0
    while True:
        answer = result(births, "Patient", f"{query}&_offset={offset}")
        pages.append(([m.id for m in answer.matches], answer.total))
        if not answer.has_next:
            break
        offset += 1
    # counting would probe every candidate: the total is left out until the last page knows it
    assert pages == [(["p1"], None), (["p3"], None), (["p5"], 3)]
    assert result(births, "Patient", query + "&_total=accurate").total == 3
    assert result(births, "Patient", query + "&_total=accurate&_offset=1").total == 3
    assert result(births, "Patient", "family=adams,young,baker&gender=male").total == 3  # one page: all seen


def test_postgresql_sorts_the_driven_candidates_before_probing_them(births):
    with births.session() as uow:
        staged = plan(uow, "Patient", [("family", "adams,young,baker"), ("gender", "male")]).page
        counted = plan(uow, "Patient", [("family", "adams,young,baker"), ("gender", "male"),
                                        ("_total", "accurate")]).page
        sql = [str(page.compile(dialect=uow.conn.dialect)) for page in (staged, counted)]
    assert ["AS candidates" in text for text in sql] == [births.dialect == "postgresql", False]


def test_total_modes(births):
    assert result(births, "Patient", "_count=2&_total=none").total is None
    assert result(births, "Patient", "_count=2&_total=accurate").total == 7
    assert result(births, "Patient", "_count=2&_total=estimate").total >= 0


def test_summary_count_and_count_zero_return_only_the_total(births):
    answer = result(births, "Patient", "gender=female&_summary=count")
    assert answer.total == 3 and answer.matches == []
    assert result(births, "Patient", "_count=0").total == 7


def test_system_search_over_named_types(store):
    put(store, {"resourceType": "Patient", "id": "a", "name": [{"family": "Lee"}]},
        {"resourceType": "Practitioner", "id": "b", "name": [{"family": "Lee"}]},
        {"resourceType": "Organization", "id": "c", "name": "Lee Clinic"})
    assert found(store, None, "_type=Patient,Practitioner&name=lee") == {"a", "b"}
    assert found(store, None, "_type=Patient,Organization&_id=a,c") == {"a", "c"}
    assert found(store, None, "_id=a,b,c") == {"a", "b", "c"}
    assert ids(store, None, "_type=Patient,Practitioner&_sort=-_id") == ["b", "a"]


def test_system_search_parameter_must_exist_on_every_type(store):
    with pytest.raises(FhirError, match="Organization has no search parameter 'family'"):
        found(store, None, "_type=Patient,Organization&family=lee")


def test_compartment_search_uses_the_compartment_definition(store):
    put(store, {"resourceType": "Patient", "id": "ann"}, {"resourceType": "Patient", "id": "bob"},
        {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
         "subject": {"reference": "Patient/ann"}},
        {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "x"},
         "subject": {"reference": "Patient/bob"}, "performer": [{"reference": "Patient/ann"}]},
        {"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "x"},
         "subject": {"reference": "Patient/bob"}})
    compartment = {"compartment": ("Patient", "ann"), "compartment_types": ["Observation"]}
    assert found(store, "Observation", "", **compartment) == {"o1", "o2"}
    assert found(store, "Observation", "_id=o2,o3", **compartment) == {"o2"}
    everything = {"compartment": ("Patient", "ann"), "compartment_types": ["Patient", "Observation"]}
    assert found(store, None, "", **everything) == {"ann", "o1", "o2"}


def test_find_accepts_any_search(births):
    with births.session() as uow:
        matches = find(uow, "Patient", [("family", "adams"), ("birthdate", "lt1955")], limit=2)
    assert [m.id for m in matches] == ["p1"]
