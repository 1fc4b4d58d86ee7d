"""Reading the store page by page: every current resource once, bounded by _since and an end instant."""
from __future__ import annotations

from ihs.analytics.source import ndjson_resources, store_resources, type_filter_queries
from ihs.fhir.errors import FhirError

import pytest


def _patients(store, n: int) -> list[str]:
    with store.session(write=True) as uow:
        return [uow.create({"resourceType": "Patient", "gender": "female" if i % 2 else "male"}).id
                for i in range(n)]


def test_keyset_pages_yield_every_resource_once(store):
    ids = _patients(store, 23)
    assert [s.id for s in store_resources(store, "Patient", page=5)] == ids


def test_resources_sharing_one_timestamp_are_neither_lost_nor_repeated(store, monkeypatch):
    monkeypatch.setattr(store.clock, "now", lambda: 1_700_000_000_000_000)  # every write at one microsecond
    ids = _patients(store, 12)
    assert sorted(s.id for s in store_resources(store, "Patient", page=5)) == sorted(ids)


def test_since_until_and_search_criteria_narrow_the_scan(store):
    first = _patients(store, 4)
    with store.session() as uow:
        middle = uow.current("Patient", first[2]).last_updated
    assert [s.id for s in store_resources(store, "Patient", since=middle)] == first[2:]
    assert [s.id for s in store_resources(store, "Patient", until=middle)] == first[:3]
    assert [s.id for s in store_resources(store, "Patient", [("gender", "female")])] == first[1::2]


def test_an_updated_resource_moves_to_the_end_and_comes_once(store):
    ids = _patients(store, 3)
    with store.session(write=True) as uow:
        current = uow.current("Patient", ids[0])
        uow.update(dict(current.resource(), active=True), current)
    assert [s.id for s in store_resources(store, "Patient", page=2)] == ids[1:] + ids[:1]


def test_type_filters_parse_per_type_and_reject_malformed():
    parsed = type_filter_queries(["Observation?code=8867-4&status=final", "Observation?category=vital-signs",
                                  "Patient?gender=female"])
    assert parsed == {"Observation": [[("code", "8867-4"), ("status", "final")], [("category", "vital-signs")]],
                      "Patient": [[("gender", "female")]]}
    with pytest.raises(FhirError):
        type_filter_queries(["code=1234"])


def test_ndjson_files_plain_and_gzip(tmp_path):
    import gzip

    (tmp_path / "a.ndjson").write_text('{"resourceType": "Patient", "id": "a"}\n\n')
    with gzip.open(tmp_path / "b.ndjson.gz", "wt") as out:
        out.write('{"resourceType": "Patient", "id": "b"}\n')
    assert [r["id"] for r in ndjson_resources([tmp_path / "a.ndjson", tmp_path / "b.ndjson.gz"])] == ["a", "b"]
