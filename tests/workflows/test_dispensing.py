"""Dispensing needs a valid prescription (无方购药 is refused and recorded), audited by the pharmacist."""
from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest

from ihs.cds.gate import Override
from ihs.cds.medication import LOCAL
from ihs.workflows import dispensing
from tests.cds.helpers import concept, condition, order, patient, practitioner



def seed(store, *resources):
    with store.session(write=True) as uow:
        for resource in resources:
            uow.create(dict(resource), method="PUT")


def medication_dispense(inn: str, prescription: str | None = "MedicationRequest/rx", patient_id: str = "p1") -> dict:
    resource = {"resourceType": "MedicationDispense", "status": "completed", "subject": {"reference": f"Patient/{patient_id}"},
                "medicationCodeableConcept": concept(inn),
                "quantity": {"value": 7, "unit": "片"}}
    if prescription:
        resource["authorizingPrescription"] = [{"reference": prescription}]
    return resource


@pytest.fixture
def prescribed(store):
    written = datetime.now(LOCAL).replace(microsecond=0).isoformat()  # valid on its day only: taken per test
    seed(store, patient(), patient("p2"), practitioner(), condition("I10", "c1"),
         order("rx", "amlodipine", status="active", dose=5, authored=written))
    return store


def dispense(store, resource, overrides=()):
    with store.session(write=True) as uow:
        return dispensing.dispense(uow, resource, overrides=list(overrides))


def refusals(store) -> list[dict]:
    from ihs.store.search import find
    with store.session() as uow:
        return [s.resource() for s in find(uow, "DetectedIssue", [("code", "no-prescription")])]


def test_a_valid_prescription_is_dispensed(prescribed):
    outcome = dispense(prescribed, medication_dispense("amlodipine"))
    assert outcome.blocked is None and outcome.dispense["id"]


def test_a_prescription_only_drug_without_prescription_is_refused_and_recorded(prescribed):
    outcome = dispense(prescribed, medication_dispense("amoxicillin", prescription=None))
    assert outcome.blocked is not None and outcome.blocked.status == 422
    assert "无方购药" in outcome.blocked.issues[0].diagnostics
    assert len(refusals(prescribed)) == 1


def test_an_over_the_counter_drug_needs_no_prescription(prescribed):
    assert dispense(prescribed, medication_dispense("paracetamol", prescription=None)).blocked is None


@pytest.mark.parametrize("resource", [
    medication_dispense("amlodipine", patient_id="p2"),
    medication_dispense("nifedipine"),
    medication_dispense("amlodipine", prescription="MedicationRequest/missing"),
])
def test_a_prescription_for_another_patient_or_drug_or_none_is_refused(prescribed, resource):
    assert dispense(prescribed, resource).blocked is not None


def test_a_prescription_is_dispensed_once_unless_repeats_are_allowed(prescribed):
    assert dispense(prescribed, medication_dispense("amlodipine")).blocked is None
    assert dispense(prescribed, medication_dispense("amlodipine")).blocked is not None


def test_an_expired_prescription_blocks_the_pharmacists_audit(store):
    written = (datetime.now(LOCAL) - timedelta(days=5)).replace(microsecond=0).isoformat()
    seed(store, patient(), practitioner(), condition("I10", "c1"), order("rx", "amlodipine", status="active", dose=5,
                                                                         authored=written))
    outcome = dispense(store, medication_dispense("amlodipine"))
    assert outcome.blocked is not None and outcome.blocked.status == 422
    codes = [f.check for _, f in outcome.blocked.blocked]
    assert codes == ["validity"]
    card = outcome.blocked.blocked[0][0]
    overridden = dispense(store, medication_dispense("amlodipine"), [Override(card["uuid"], comment="患者住院延误")])
    assert overridden.blocked is None


def test_dispense_over_http(client, prescribed):
    created = client.post("/MedicationDispense/$dispense", content=orjson.dumps(medication_dispense("amlodipine")))
    assert created.status_code == 201 and created.headers["Location"].startswith("http://testserver/MedicationDispense/")
    refused = client.post("/MedicationDispense/$dispense",
                          content=orjson.dumps(medication_dispense("amoxicillin", prescription=None)))
    assert refused.status_code == 422 and refused.json()["resourceType"] == "OperationOutcome"
