"""A search's SQL is compiled once per shape and reused with other values (ihs/store/search/shapes.py).

Every shape the cache serves is run with several values, each answer compared with the brute-force
reference evaluator, and the cache must have served the later runs from the compiled shape: a
value frozen into the SQL as if it were a constant would answer the first value's search again.
"""
from __future__ import annotations

import pytest

from ihs.api import bundle
from ihs.auth.restriction import AUTHOR_SYSTEM, PatientGrant, Restriction, visible
from ihs.demo.generator import generate_region
from ihs.store.search import search
from ihs.store.search.shapes import shapes
from tests.search_reference import ReferenceSearch

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


@pytest.fixture
def region(store):
    for item in generate_region(seed=5, residents=12):
        bundle.process(store, item)
    with store.session() as uow:
        everything = search(uow, None, [("_count", "1000")])
    assert not everything.has_next
    return store, ReferenceSearch([m.resource() for m in everything.matches])


def _of(ref: ReferenceSearch, res_type: str) -> list[dict]:
    return [r for r in ref.resources if r["resourceType"] == res_type]


def _shapes(ref: ReferenceSearch) -> dict[str, tuple[str, list[list[tuple[str, str]]]]]:
    """Per shape: the type searched and three queries of that shape with values from the data."""
    patients = sorted(_of(ref, "Patient"), key=lambda p: p["id"])[:3]
    observations = sorted((o for o in _of(ref, "Observation") if "effectiveDateTime" in o),
                          key=lambda o: o["id"])[:3]
    encounters = sorted((e for e in _of(ref, "Encounter") if "period" in e), key=lambda e: e["id"])[:3]
    family = [p["name"][0]["family"] for p in patients]
    identifier = [next(i for i in p["identifier"] if "system" in i and "value" in i) for p in patients]
    years = [int(p["birthDate"][:4]) for p in patients]
    codes = [o["code"]["coding"][0] for o in observations]
    days = [o["effectiveDateTime"][:10] for o in observations]
    months = [e["period"]["start"][:7] for e in encounters]
    return {
        "string prefix": ("Patient", [[("family", f[:3])] for f in family]),
        "string exact": ("Patient", [[("family:exact", f)] for f in family]),
        "string contains": ("Patient", [[("family:contains", f[len(f) // 2:])] for f in family]),
        "identifier": ("Patient", [[("identifier", f"{i['system']}|{i['value']}")] for i in identifier]),
        "identifier value only": ("Patient", [[("identifier", i["value"])] for i in identifier]),
        "token code": ("Patient", [[("gender", g)] for g in ("male", "female", "other")]),
        "token system|code": ("Observation", [[("code", f"{c['system']}|{c['code']}")] for c in codes]),
        "token :not": ("Observation", [[("code:not", f"{c['system']}|{c['code']}")] for c in codes]),
        "token :text": ("Observation", [[("code:text", c.get("display", "x")[:4])] for c in codes]),
        "reference Type/id": ("Observation", [[("subject", f"Patient/{p['id']}")] for p in patients]),
        "reference bare id": ("Observation", [[("patient", p["id"])] for p in patients]),
        "date day": ("Observation", [[("date", d)] for d in days]),
        "date window": ("Patient", [[("birthdate", f"ge{y - 3}"), ("birthdate", f"lt{y + 3}")] for y in years]),
        "period window": ("Encounter", [[("date", f"ge{m}"), ("date", f"le{m}")] for m in months]),
        "_id": ("Patient", [[("_id", f"{a['id']},{b['id']}")] for a, b in zip(patients, patients[1:] + patients[:1])]),
        "chain": ("Observation", [[("subject:Patient.family", f[:3])] for f in family]),
        "_has": ("Patient", [[("_has:Observation:subject:code", f"{c['system']}|{c['code']}")] for c in codes]),
        "two tests": ("Observation", [[("patient", p["id"]), ("date", f"ge{y}")] for p, y in zip(patients, years)]),
        "two tests, sorted": ("Observation", [[("patient", p["id"]), ("date", f"ge{y}"), ("_sort", "-date")]
                                              for p, y in zip(patients, years)]),
    }


def _ids(store, res_type: str, query: list[tuple[str, str]]) -> set[str]:
    with store.session() as uow:
        answer = search(uow, res_type, query + [("_count", "1000")])
    assert not answer.has_next
    return {m.id for m in answer.matches}


def test_each_shape_answers_every_value_from_one_compilation(region):
    store, ref = region
    for name, (res_type, queries) in _shapes(ref).items():
        answers = []
        for number, query in enumerate(queries):
            hits = shapes.hits
            answers.append(_ids(store, res_type, query))
            criteria = [(n, v) for n, v in query if n != "_sort"]  # the reference knows no order
            assert answers[-1] == ref.search(res_type, criteria), (name, query)
            if number:
                assert shapes.hits > hits, f"{name}: {query} did not reuse the compiled shape"
        assert len({frozenset(a) for a in answers}) > 1 or name == "token :not", \
            f"{name}: every value gave the same answer, which proves nothing"


def test_pages_of_one_shape_follow_each_other(region):
    store, ref = region
    patient = sorted(_of(ref, "Patient"), key=lambda p: p["id"])[0]
    query = [("patient", patient["id"])]
    expected = ref.search("Observation", query)
    assert len(expected) > 6
    seen: list[str] = []
    offset = 0
    while True:
        with store.session() as uow:
            page = search(uow, "Observation", query + [("_count", "3"), ("_offset", str(offset))])
        seen += [m.id for m in page.matches]
        assert page.total == len(expected)
        if not page.has_next:
            break
        offset += 3
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_a_shape_it_cannot_trace_is_still_answered(region):
    store, ref = region
    observation = sorted(_of(ref, "Observation"), key=lambda o: o["id"])[0]
    coding = observation["code"]["coding"][0]
    misses = shapes.misses
    query = [("code", f"{coding['system']}|{coding['code']}"), ("date", "ap2020")]  # `ap` depends on today
    assert _ids(store, "Observation", query) == ref.search("Observation", query)
    assert _ids(store, "Observation", query) == ref.search("Observation", query)
    assert shapes.misses > misses


def test_restricted_searches_bind_the_restrictions_values_into_one_compilation(region):
    store, ref = region
    patients = sorted(p["id"] for p in _of(ref, "Patient"))[:3]
    everyone = {r["id"]: r for r in ref.resources}
    restricted = (CONFIDENTIALITY, "R")
    # a patient's own record; a clinician's institution, unattached resources and two patients' records
    clinician = [Restriction(tags=frozenset({(AUTHOR_SYSTEM, f"Organization/{a}")}), unattached=True,
                             grants=(PatientGrant(frozenset({a, b}), excluded_labels=frozenset({restricted})),))
                 for a, b in zip(patients, patients[1:] + patients[:1])]
    cases = {"patient": [Restriction(grants=(PatientGrant(frozenset({p})),)) for p in patients], "clinician": clinician}
    for name, restrictions in cases.items():
        for res_type in ("Observation", "Patient"):
            answers = []
            for number, restriction in enumerate(restrictions):
                hits = shapes.hits
                with store.session() as uow:
                    answer = search(uow, res_type, [("_count", "1000")], restriction=restriction)
                answers.append({m.id for m in answer.matches})
                assert answers[-1] == {i for i in ref.search(res_type, []) if visible(restriction, everyone[i])}
                if number:
                    assert shapes.hits > hits, f"{name}: {res_type} did not reuse the compiled shape"
            assert len({frozenset(a) for a in answers}) > 1, f"{name}: every restriction gave the same answer"
