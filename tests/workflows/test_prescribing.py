"""Signing: a critical card blocks unless overridden with a reason; every card and override is stored."""
from __future__ import annotations

import orjson
import pytest

from ihs.cds.gate import Override
from ihs.fhir.errors import Conflict
from ihs.workflows import prescribing
from tests.cds.helpers import condition, order, patient, practitioner


def seed(store, *resources):
    with store.session(write=True) as uow:
        for resource in resources:
            uow.create(dict(resource), method="PUT")


@pytest.fixture
def chart(store):
    seed(store, patient(), practitioner(), condition("E78.5", "c1"), condition("J02.9", "c2"),
         order("statin", "simvastatin", status="active", dose=20, days=28, long_term=True),
         order("draft", "clarithromycin", dose=500, per_day=2))
    return store


def sign(store, overrides=()):
    with store.session(write=True) as uow:
        return prescribing.sign(uow, "draft", overrides=list(overrides))


def current(store, res_type, res_id):
    with store.session() as uow:
        return uow.current(res_type, res_id).resource()


def test_a_critical_card_blocks_signing_and_is_stored(chart):
    outcome = sign(chart)
    assert outcome.blocked is not None and outcome.signed is None
    assert current(chart, "MedicationRequest", "draft")["status"] == "draft"
    critical = [c for c in outcome.result.cards if c["indicator"] == "critical"]
    assert critical
    assert current(chart, "DetectedIssue", critical[0]["uuid"])["status"] == "preliminary"


def test_signing_again_shows_the_same_cards(chart):
    first, second = sign(chart), sign(chart)
    assert [c["uuid"] for c in first.result.cards] == [c["uuid"] for c in second.result.cards]


def test_an_override_with_a_reason_signs_and_is_recorded(chart):
    card = next(c for c in sign(chart).result.cards if c["indicator"] == "critical")
    outcome = sign(chart, [Override(card["uuid"], card["overrideReasons"][0], "短期使用，停用他汀7天")])
    assert outcome.blocked is None
    signed = current(chart, "MedicationRequest", "draft")
    assert signed["status"] == "active" and signed["authoredOn"]
    assert {"reference": f"DetectedIssue/{card['uuid']}"} in signed["detectedIssue"]
    issue = current(chart, "DetectedIssue", card["uuid"])
    assert issue["status"] == "final"
    assert issue["mitigation"][0]["action"]["text"] == "短期使用，停用他汀7天"


def test_an_override_without_a_reason_does_not_count(chart):
    card = next(c for c in sign(chart).result.cards if c["indicator"] == "critical")
    outcome = sign(chart, [Override(card["uuid"])])
    assert outcome.blocked is not None
    assert "without a reason" in outcome.blocked.issues[0].diagnostics


def test_a_safe_draft_signs_without_cards(store):
    seed(store, patient(), practitioner(), condition("I10", "c1"), order("draft", "amlodipine", dose=5, authored=None))
    outcome = sign(store)
    assert outcome.result.cards == [] and outcome.signed["status"] == "active"
    assert "authoredOn" in current(store, "MedicationRequest", "draft")


def test_only_a_draft_can_be_signed(store):
    seed(store, patient(), practitioner(), order("draft", "amlodipine", status="active", dose=5))
    with pytest.raises(Conflict):
        sign(store)


def test_sign_over_http_answers_422_with_the_cards_then_200_when_overridden(client, store):
    seed(store, patient(), practitioner(), condition("E78.5", "c1"), condition("J02.9", "c2"),
         order("statin", "simvastatin", status="active", dose=20, days=28, long_term=True),
         order("draft", "clarithromycin", dose=500, per_day=2))
    blocked = client.post("/MedicationRequest/draft/$sign")
    assert blocked.status_code == 422
    outcome = blocked.json()
    assert outcome["resourceType"] == "OperationOutcome"
    errors = [i for i in outcome["issue"] if i["severity"] == "error" and i.get("extension")]
    card = orjson.loads(errors[0]["extension"][0]["valueString"])
    assert card["indicator"] == "critical"
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "override", "part": [
        {"name": "card", "valueString": card["uuid"]},
        {"name": "reason", "valueCoding": card["overrideReasons"][1]},
        {"name": "comment", "valueString": "已评估"}]}]}
    signed = client.post("/MedicationRequest/draft/$sign", content=orjson.dumps(parameters))
    assert signed.status_code == 200 and signed.json()["status"] == "active"
