"""The shipped knowledge: the ONC lists behave as published, and every fact names its source."""
from __future__ import annotations

import itertools

import pytest

from ihs.cds import service
from ihs.cds.open_kb import OpenKnowledgeBase
from ihs.demo.medications import DRUGS
from tests.cds.helpers import KB, NOW, condition, hook_request, order, prefetch

HIGH = [r for r in KB.rules if r["list"] == "onc-high-priority"]
LOW = [r for r in KB.rules if r["list"] == "onc-low-priority"]


def members(class_name: str) -> list:
    return sorted((d for d in KB.drugs.values() if class_name in KB.classes_of(d)), key=lambda d: d.key)


def sign_cards(new: str, current: str) -> list[dict]:
    body = hook_request("order-sign", [order("new", new)],
                        prefetch(active=[order("cur", current, status="active")]))
    result = service.run(None, service.service("prescription-safety", "order-sign"), body, fetcher=None,
                         scope="test", now=NOW, kb=KB, record=False)
    return [c for c in result.cards if c["source"]["topic"]["code"] == "ddi"]


def test_the_onc_high_priority_list_has_15_pairs_and_the_low_priority_list_is_class_based():
    assert len(HIGH) == 15
    assert len(LOW) >= 25


@pytest.mark.parametrize("rule", HIGH, ids=[r["id"] for r in HIGH])
def test_every_onc_high_priority_pair_raises_a_critical_card(rule):
    a, b = members(rule["a"])[0], next(d for d in members(rule["b"]) if d.key != members(rule["a"])[0].key)
    for new, current in ((a, b), (b, a)):
        cards = sign_cards(new.key, current.key)
        assert [c["indicator"] for c in cards] == ["critical"], (new.key, current.key)
        assert "Phansalkar et al. 2012" in cards[0]["source"]["label"]


@pytest.mark.parametrize("rule", HIGH, ids=[r["id"] for r in HIGH])
def test_every_member_pair_of_an_onc_high_priority_class_is_critical(rule):
    for a, b in itertools.product(members(rule["a"]), members(rule["b"])):
        if a.key != b.key:
            assert KB.interaction(a, b).severity == "critical", (a.key, b.key)


@pytest.mark.parametrize("rule", LOW, ids=[r["id"] for r in LOW])
def test_no_onc_low_priority_pair_interrupts(rule):
    pairs = [(a, b) for a, b in itertools.product(members(rule["a"]), members(rule["b"])) if a.key != b.key]
    assert pairs, f"{rule['id']} has no drugs in one of its classes"
    for a, b in pairs:
        assert KB.interaction(a, b).severity == "info", (a.key, b.key)
    cards = sign_cards(pairs[0][0].key, pairs[0][1].key)
    assert cards and {c["indicator"] for c in cards} == {"info"}
    assert all("overrideReasons" not in c for c in cards)


def test_drugs_without_a_rule_raise_no_interaction_card():
    assert sign_cards("amoxicillin", "atorvastatin") == []


def test_every_demo_drug_is_in_the_formulary_and_codes_resolve():
    for drug in DRUGS.values():
        resolved = KB.resolve({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": drug.rxcui}]})
        assert resolved is not None and resolved.formulary is not None, drug.english
        assert resolved.zh == drug.chinese


def test_every_fact_names_its_source():
    for drug in KB.drugs.values():
        entry = drug.formulary
        if entry is None:
            continue
        assert entry.group and entry.indications, drug.key
        assert entry.dose is None or entry.dose.source.label
        assert all(limit.source.label for limit in entry.renal)
    for name, spec in KB.classes.items():
        assert spec["source"], name
    for rule in KB.rules:
        assert rule.get("source") or KB.lists[rule["list"]]["label"]
    for spec in KB.allergy_classes.values():
        assert spec["source"]


def test_codes_in_the_dictionary_are_unique():
    codes = [(d.rxcui) for d in KB.drugs.values() if d.rxcui]
    assert len(codes) == len(set(codes))
    atc = [code for d in KB.drugs.values() for code in d.atc]
    assert len(atc) == len(set(atc))


def test_a_drug_resolves_by_rxnorm_atc_and_name():
    assert KB.resolve({"coding": [{"system": "http://www.whocc.no/atc", "code": "C10AA01"}]}).key == "simvastatin"
    assert KB.resolve({"text": "辛伐他汀"}).key == "simvastatin"
    assert KB.resolve({"coding": [{"display": "Albuterol"}]}).key == "salbutamol"
    assert KB.resolve({"text": "no such drug"}) is None


def test_a_drug_known_only_by_an_atc_code_still_belongs_to_its_classes():
    unknown_statin = KB.resolve({"coding": [{"system": "http://www.whocc.no/atc", "code": "C10AA04"}]})
    assert "statins" in KB.classes_of(unknown_statin)


def test_a_knowledge_base_with_an_unknown_class_in_a_rule_is_refused(tmp_path):
    import shutil

    import orjson

    from ihs.cds.open_kb import KNOWLEDGE
    for f in KNOWLEDGE.glob("*.json"):
        shutil.copy(f, tmp_path / f.name)
    data = orjson.loads((tmp_path / "interactions.json").read_bytes())
    data["rules"][0]["a"] = "no-such-class"
    (tmp_path / "interactions.json").write_bytes(orjson.dumps(data))
    with pytest.raises(ValueError, match="no-such-class"):
        OpenKnowledgeBase(tmp_path)


def test_indications_cover_the_demo_regimens():
    from ihs.demo.conditions import DISEASES
    from ihs.demo.medications import REGIMENS
    for disease, regimens in REGIMENS.items():
        code = DISEASES[disease].icd10
        for regimen in regimens:
            for key in regimen:
                drug = KB.resolve({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                               "code": DRUGS[key].rxcui}]})
                body = hook_request("order-sign", [order("new", drug.key)], prefetch(conditions=[condition(code)]))
                result = service.run(None, service.service("prescription-safety", "order-sign"), body, fetcher=None,
                                     scope="t", now=NOW, kb=KB, record=False)
                assert not [c for c in result.cards if c["source"]["topic"]["code"] == "indication"], (disease, key)
