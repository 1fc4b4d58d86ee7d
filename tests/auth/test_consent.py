from datetime import datetime, timezone

from ihs.auth.consent import DENY, PERMIT, Access, decide_consents, permitted_classes
from tests.auth.world import CONFIDENTIALITY, actor, consent

HOSPITAL_A = frozenset({"Organization/hA"})
HOSPITAL_B = frozenset({"Organization/hB"})
CONDITION = {"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}
RESTRICTED = (CONFIDENTIALITY, "R")


def access(actors=HOSPITAL_A, resource_type="Observation", labels=(), now=None):
    return Access(actors, resource_type, frozenset(labels), now)


def test_no_consent_follows_the_regional_default():
    assert decide_consents([], access(), PERMIT) == PERMIT
    assert decide_consents([], access(), DENY) == DENY


def test_root_deny_denies_everyone():
    assert decide_consents([consent("c", "p", {"type": "deny"})], access(), PERMIT) == DENY


def test_permit_for_one_actor_only():
    consents = [consent("c", "p", {"type": "permit", "actor": [actor("Organization/hA")]})]
    assert decide_consents(consents, access(HOSPITAL_A), DENY) == PERMIT
    assert decide_consents(consents, access(HOSPITAL_B), DENY) == DENY  # the provision does not apply: default


def test_deny_with_nested_permit_for_an_organization():
    consents = [consent("c", "p", {"type": "deny", "provision": [
        {"type": "permit", "actor": [actor("Organization/hA")]}]})]
    assert decide_consents(consents, access(HOSPITAL_A), PERMIT) == PERMIT
    assert decide_consents(consents, access(HOSPITAL_B), PERMIT) == DENY


def test_data_class_exception():
    consents = [consent("c", "p", {"type": "permit", "provision": [{"type": "deny", "class": [CONDITION]}]})]
    assert decide_consents(consents, access(resource_type="Observation"), DENY) == PERMIT
    assert decide_consents(consents, access(resource_type="Condition"), DENY) == DENY


def test_security_label_exception():
    consents = [consent("c", "p", {"type": "permit", "provision": [
        {"type": "deny", "securityLabel": [{"system": CONFIDENTIALITY, "code": "R"}]}]})]
    assert decide_consents(consents, access(labels=[RESTRICTED]), PERMIT) == DENY
    assert decide_consents(consents, access(), PERMIT) == PERMIT


def test_period_limits_a_provision():
    consents = [consent("c", "p", {"type": "deny", "period": {"start": "2026-01-01", "end": "2026-06-30"}})]
    inside = datetime(2026, 3, 1, tzinfo=timezone.utc)
    after = datetime(2026, 8, 1, tzinfo=timezone.utc)
    assert decide_consents(consents, access(now=inside), PERMIT) == DENY
    assert decide_consents(consents, access(now=after), PERMIT) == PERMIT


def test_policy_rule_without_provisions():
    assert decide_consents([consent("c", "p", None, "OPTOUT")], access(), PERMIT) == DENY
    assert decide_consents([consent("c", "p", None, "OPTIN")], access(), DENY) == PERMIT


def test_deny_wins_over_permit_between_consents():
    consents = [consent("c1", "p", {"type": "permit"}), consent("c2", "p", {"type": "deny"})]
    assert decide_consents(consents, access(), PERMIT) == DENY


def test_inactive_and_other_scopes_are_ignored():
    inactive = {**consent("c", "p", {"type": "deny"}), "status": "inactive"}
    research = {**consent("c2", "p", {"type": "deny"}),
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                      "code": "research"}]}}
    assert decide_consents([inactive, research], access(), PERMIT) == PERMIT


def test_permitted_classes_for_search():
    consents = [consent("c", "p", {"type": "permit", "provision": [
        {"type": "deny", "class": [CONDITION]},
        {"type": "deny", "securityLabel": [{"system": CONFIDENTIALITY, "code": "R"}]}]})]
    classes = permitted_classes(consents, HOSPITAL_A, DENY)
    assert "Observation" in classes.types and "Condition" not in classes.types
    assert classes.excluded_labels == {RESTRICTED}
    assert permitted_classes([], HOSPITAL_A, PERMIT).types is None
    assert permitted_classes([], HOSPITAL_A, DENY).nothing
    assert permitted_classes([consent("c", "p", {"type": "deny"})], HOSPITAL_A, PERMIT).nothing
