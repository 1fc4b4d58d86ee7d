"""The matching engine on real and generated benchmarks: blocking, EM and the match decision."""
from __future__ import annotations

import pytest

from ihs.mpi import febrl
from ihs.mpi.chinese import HOMOPHONES, generate
from ihs.mpi.compare import FIELD_NAMES
from ihs.mpi.engine import PROBABLE, Matcher
from ihs.mpi.evaluate import accuracy, true_pairs
from ihs.mpi.features import person
from ihs.mpi.idnumber import RESIDENT_ID_SYSTEM, is_valid
from ihs.mpi.model import Model
from tests.shared_data import shared_file


def _link(patients: list[dict]):
    matcher = Matcher()
    for patient in patients:
        matcher.add(person(patient))
    levels = matcher.train(samples=20_000)
    predicted = {frozenset(pair) for pair, lv in levels.items() if matcher.model.probability(lv) >= PROBABLE}
    return matcher, predicted


def test_evaluation_counts_pairs():
    truth = true_pairs({"a": 1, "b": 1, "c": 1, "d": 2})
    assert len(truth) == 3
    result = accuracy({frozenset(("a", "b")), frozenset(("c", "d"))}, truth)
    assert (result.true_positives, result.false_positives, result.false_negatives) == (1, 1, 2)
    assert result.precision == 0.5 and round(result.f1, 3) == 0.4


def test_generated_chinese_records_carry_valid_ids_unless_mistyped():
    patients, truth = generate(200, seed=3)
    ids = [i["value"] for p in patients for i in p.get("identifier", []) if i["system"] == RESIDENT_ID_SYSTEM]
    assert len(set(truth.values())) == 200 and len(patients) > 300
    assert sum(is_valid(i) for i in ids) / len(ids) > 0.9
    assert HOMOPHONES["wang"] == ["汪", "王"]


@pytest.fixture(scope="module")
def chinese():
    patients, truth = generate(1500, seed=11)
    matcher, predicted = _link(patients)
    return matcher, predicted, truth


def test_chinese_set_f1_at_least_099(chinese):
    matcher, predicted, truth = chinese
    result = accuracy(predicted, true_pairs(truth))
    assert result.f1 >= 0.99, result
    national = FIELD_NAMES.index("national_id")
    assert matcher.model.m[national][2] > 0.8 > matcher.model.u[national][2] * 100


def test_febrl4_without_ssn_f1_at_least_0998():
    patients = febrl.load(shared_file("febrl-record-linkage.tar.gz"), "FEBRL4")
    _, predicted = _link(patients)
    result = accuracy(predicted, true_pairs({p["id"]: febrl.entity_of(p["id"]) for p in patients}))
    assert result.f1 >= 0.998, result


def test_febrl3_dedupe_f1_at_least_099():
    patients = febrl.load(shared_file("febrl-record-linkage.tar.gz"), "FEBRL3")
    _, predicted = _link(patients)
    result = accuracy(predicted, true_pairs({p["id"]: febrl.entity_of(p["id"]) for p in patients}))
    assert result.f1 >= 0.99, result


def test_model_round_trips_through_json_and_ignores_other_fields():
    model = Model()
    again = Model.from_json(model.to_json())
    assert again.m == model.m and again.shares == model.shares
    stale = dict(model.to_json(), fields=["family"])
    assert Model.from_json(stale).trained_on == 0


def test_twins_sharing_home_phone_and_birth_date_are_not_one_person(chinese):
    twin = {"resourceType": "Patient", "gender": "female", "birthDate": "2001-04-05",
            "telecom": [{"system": "phone", "value": "13912345678"}],
            "address": [{"line": ["爱山街道", "人民路12号"], "district": "吴兴区", "postalCode": "313000"}]}
    a = dict(twin, id="a", name=[{"family": "王", "given": ["欣怡"]}],
             identifier=[{"system": RESIDENT_ID_SYSTEM, "value": "330502200104050028"}])
    b = dict(twin, id="b", name=[{"family": "王", "given": ["欣悦"]}],
             identifier=[{"system": RESIDENT_ID_SYSTEM, "value": "330502200104050044"}])
    matcher = chinese[0]
    assert matcher.score(person(a), person(b)).probability < PROBABLE
    assert matcher.score(person(a), person(dict(a, id="c"))).grade == "certain"
