"""Break-the-glass: a grant that lasts, notifications to the patient and the privacy officer."""
import pytest

from ihs.auth.break_glass import active_grants, record_use
from ihs.auth.config import PolicyConfig
from ihs.auth.policy import Policy
from ihs.store.search import find
from tests.auth import world
from tests.auth.world import observation


@pytest.fixture
def network(secure_store):
    world.load(secure_store)
    return secure_store


CONFIG = PolicyConfig(cache_seconds=0, break_glass_minutes=30, privacy_officer="Practitioner/drB")


def test_first_use_opens_a_grant_and_notifies(network):
    doctor = world.principal("doctorA").claiming_break_glass("unconscious, suspected overdose")
    with network.session(write=True) as uow:
        grant = record_use(uow, doctor, "none", CONFIG)
    assert grant.expires_at - grant.granted_at == 30 * 60
    assert grant.reason == "unconscious, suspected overdose"
    with network.session() as uow:
        notices = [s.resource() for s in find(uow, "Communication", [("subject", "Patient/none")])]
    recipients = sorted(n["recipient"][0]["reference"] for n in notices)
    assert recipients == ["Patient/none", "Practitioner/drB"]
    assert all(n["topic"]["coding"][0]["code"] == "BTG" and n["sender"]["reference"] == "Practitioner/drA"
               for n in notices)
    assert "unconscious, suspected overdose" in notices[0]["payload"][0]["contentString"]


def test_later_uses_reuse_the_grant_without_new_notices(network):
    doctor = world.principal("doctorA").claiming_break_glass("emergency")
    with network.session(write=True) as uow:
        first = record_use(uow, doctor, "none", CONFIG)
    with network.session(write=True) as uow:
        again = record_use(uow, doctor, "none", CONFIG)
    assert again.id == first.id
    with network.session() as uow:
        assert len(find(uow, "Communication", [("subject", "Patient/none")])) == 2


def test_the_grant_opens_the_record_without_a_new_claim(network):
    policy = Policy(CONFIG)
    obs = observation("obs-none-B", "none", "hB")
    plain = world.principal("doctorA")
    with network.session() as uow:
        assert not policy.decide(plain, "read", "Observation", obs, uow).allowed
    with network.session(write=True) as uow:
        record_use(uow, plain.claiming_break_glass("emergency"), "none", CONFIG)
    with network.session() as uow:
        decision = policy.decide(plain, "read", "Observation", obs, uow)
        assert decision.allowed and decision.break_glass  # still audited as break-the-glass
        assert "none" in policy.search_restriction(plain, "Observation", uow).patient_ids()
        assert not policy.decide(world.principal("nurseA"), "read", "Observation", obs, uow).allowed


def test_grants_expire(network):
    doctor = world.principal("doctorA").claiming_break_glass("emergency")
    with network.session(write=True) as uow:
        grant = record_use(uow, doctor, "none", CONFIG)
    with network.session() as uow:
        assert [g.id for g in active_grants(uow.conn, "doctorA")] == [grant.id]
        assert active_grants(uow.conn, "doctorA", now=grant.expires_at + 1) == []


def test_search_with_a_claim_names_the_patients(network):
    policy = Policy(CONFIG)
    doctor = world.principal("doctorA").claiming_break_glass("emergency")
    with network.session() as uow:
        restriction = policy.search_restriction(doctor, "Observation", uow, patients=("none",))
    grant = [g for g in restriction.grants if g.why == "break-the-glass"]
    assert grant and grant[0].patients == {"none"}


def test_patients_named_by_a_search():
    from ihs.auth.break_glass import patients_in_query

    assert patients_in_query("Observation", [("subject", "Patient/a,b"), ("code", "8867-4")]) == ("a", "b")
    assert patients_in_query("Observation", [("patient", "c")]) == ("c",)
    assert patients_in_query("Patient", [("_id", "d")]) == ("d",)
    assert patients_in_query("Observation", [], compartment=("Patient", "e")) == ("e",)
    assert patients_in_query("Observation", [("subject", "Group/g")]) == ()


def test_break_glass_patients_are_those_only_the_claim_shows(network):
    from ihs.auth.policy import break_glass_patients

    policy = Policy(CONFIG)
    doctor = world.principal("doctorA").claiming_break_glass("emergency")
    named = ("none", "rel", "partial")
    with network.session() as uow:
        shown = {t: break_glass_patients(policy.search_restriction(doctor, t, uow, patients=named), t)
                 for t in ("Observation", "Condition", "Patient", "Organization")}
        overall = break_glass_patients(policy.search_restriction(doctor, None, uow, patients=named))
        unclaimed = policy.search_restriction(world.principal("doctorA"), "Observation", uow, patients=named)
        pharmacist = world.principal("pharmacistA").claiming_break_glass("emergency")
        medication = policy.search_restriction(pharmacist, "MedicationRequest", uow, patients=named)
        procedures = policy.search_restriction(pharmacist, "Procedure", uow, patients=named)
    # rel: a treatment relationship without a Consent; partial: its Consent hides Conditions and R-labelled records
    assert shown["Observation"] == {"none", "partial"} and shown["Condition"] == {"none", "partial"}
    assert shown["Patient"] == set() and shown["Organization"] == set()  # demographics lookup, directory
    assert overall == {"none", "partial"}
    assert break_glass_patients(unclaimed, "Observation") == set()
    assert break_glass_patients(medication, "MedicationRequest") == {"none", "partial"}
    assert break_glass_patients(procedures, "Procedure") == set()  # never shown to a pharmacist


def test_an_open_grant_counts_as_break_glass_without_a_claim(network):
    from ihs.auth.policy import break_glass_patients

    policy = Policy(CONFIG)
    with network.session(write=True) as uow:
        record_use(uow, world.principal("doctorA").claiming_break_glass("emergency"), "none", CONFIG)
    with network.session() as uow:
        restriction = policy.search_restriction(world.principal("doctorA"), "Observation", uow)
    assert break_glass_patients(restriction, "Observation") == {"none"}
