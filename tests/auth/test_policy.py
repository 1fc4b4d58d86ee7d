"""The authorization matrix at the policy level: roles x interactions x resource types x situations.

The situations are tests/auth/world.py's patients: no relationship (none), relationship (rel, task,
via CareTeam: partial), consent permit (permit), consent deny (deny), outside the treatment window
(old), and break-the-glass (a claim on a principal).
"""
import pytest

from ihs.auth.config import PolicyConfig
from ihs.auth.policy import Policy, stamp_author
from ihs.auth.restriction import AUTHOR_SYSTEM, stored_matcher, visible
from tests.auth import world
from tests.auth.world import observation

PATIENTS = ("rel", "none", "permit", "deny", "partial", "task", "old", "parent", "child")

# (principal, resource id) -> expected read decision
READS = {
    "doctorA": {
        "obs-rel-B": True,  # relationship (Encounter ended 10 days ago), no Consent: opt-out region permits
        "obs-none-B": False,  # no relationship
        "obs-none-A": True,  # authored by the doctor's institution
        "obs-permit-B": True,  # Encounter in progress, Consent permits hospital A
        "obs-deny-B": False,  # relationship, but the Consent denies
        "obs-deny-A": True,  # own institution's record, whatever the Consent
        "obs-partial-B": True,  # CareTeam membership, Consent permits
        "obs-partial-R": False,  # Consent denies data labelled R
        "cond-partial-B": False,  # Consent denies the Condition class
        "cond-rel-B": True,
        "obs-task-B": True,  # accepted referral Task owned by hospital A
        "obs-old-B": False,  # last Encounter outside the treatment window
        "obs-parent": False,
        "cond-notifiable": False,
        "med-rel-B": True,
        "cov-rel": True,
        "claim-other": False,
        "mr-1": True,  # not part of any patient's record
        "sched-B": True,
        "audit-rel": False,  # audit trails are not for clinical staff
        "none": True,  # Patient lookup (registration)
        "hA": True,
        "consent-deny": False,
    },
    "nurseA": {"obs-rel-B": True, "obs-partial-B": False, "obs-none-A": True, "obs-none-B": False},
    "pharmacistA": {"obs-rel-B": True, "med-rel-B": True, "cond-rel-B": True, "obs-none-A": True,
                    "obs-none-B": False, "enc-none-B": False},
    "doctorB": {"obs-rel-B": True, "obs-none-A": True, "obs-deny-A": False, "obs-old-B": True},
    "child": {"obs-child": True, "child": True, "obs-parent": True, "parent": True, "obs-rel-B": False,
              "hA": True, "audit-rel": False, "sched-B": False, "consent-proxy": True, "bp-1": False},
    "adminA": {"hA": True, "role-drA": True, "none": True, "obs-rel-B": False, "obs-none-A": False,
               "audit-rel": False},
    "regulator": {"mr-1": True, "hA": True, "none": False, "obs-rel-B": False, "cov-rel": False, "sched-B": False},
    "cdc": {"cond-notifiable": True, "mr-1": True, "obs-none-B": False, "none": False, "hA": True},
    "insurer": {"cov-rel": True, "claim-payer": True, "claim-other": False, "obs-rel-B": False, "rel": False},
    "device": {"obs-rel-B": False, "rel": False, "bp-1": False, "hA": False},
    "system": {"obs-none-B": True, "audit-rel": True, "none": True},
    "systemA": {"obs-rel-B": True, "obs-none-B": False, "obs-none-A": True},
}


@pytest.fixture(scope="module")
def policy():
    return Policy(PolicyConfig(cache_seconds=0, default_sharing="opt-out"))


@pytest.fixture(scope="module")
def resources():
    return {r["id"]: r for r in world.resources()}


def _decide(policy, store, who, action, resource, **changes):
    principal = world.principal(who, **changes) if isinstance(who, str) else who
    with store.session() as uow:
        return policy.decide(principal, action, resource["resourceType"], resource, uow)


@pytest.mark.parametrize("who,resource_id,expected",
                         [(w, r, e) for w, cells in READS.items() for r, e in cells.items()])
def test_read_matrix(world_store, policy, resources, who, resource_id, expected):
    decision = _decide(policy, world_store, who, "read", resources[resource_id])
    assert decision.allowed is expected, decision.reason


def test_denials_say_why(world_store, policy, resources):
    decision = _decide(policy, world_store, "doctorA", "read", resources["obs-deny-B"])
    assert "Consent of Patient/deny" in decision.reason
    decision = _decide(policy, world_store, "doctorA", "read", resources["obs-none-B"])
    assert "no active treatment relationship with Patient/none" in decision.reason


@pytest.mark.parametrize("resource_id", ["obs-none-B", "obs-deny-B", "obs-old-B", "cond-partial-B"])
def test_break_the_glass_opens_any_record_and_says_so(world_store, policy, resources, resource_id):
    doctor = world.principal("doctorA").claiming_break_glass("unconscious patient in the emergency room")
    decision = _decide(policy, world_store, doctor, "read", resources[resource_id])
    assert decision.allowed and decision.break_glass
    assert decision.patients


def test_break_the_glass_is_not_flagged_when_not_needed(world_store, policy, resources):
    doctor = world.principal("doctorA").claiming_break_glass("emergency")
    decision = _decide(policy, world_store, doctor, "read", resources["obs-rel-B"])
    assert decision.allowed and not decision.break_glass


def test_break_the_glass_is_for_clinical_staff_only(world_store, policy, resources):
    for who in ("adminA", "insurer", "child", "systemA"):
        principal = world.principal(who).claiming_break_glass("emergency")
        assert not _decide(policy, world_store, principal, "read", resources["obs-none-B"]).allowed, who


def test_opt_in_region_needs_a_permitting_consent(world_store, resources):
    opt_in = Policy(PolicyConfig(cache_seconds=0, default_sharing="opt-in"))
    assert not _decide(opt_in, world_store, "doctorA", "read", resources["obs-rel-B"]).allowed
    assert _decide(opt_in, world_store, "doctorA", "read", resources["obs-permit-B"]).allowed
    assert _decide(opt_in, world_store, "doctorA", "read", resources["obs-none-A"]).allowed


def test_patient_lookup_can_be_switched_off(world_store, resources):
    strict = Policy(PolicyConfig(cache_seconds=0, staff_patient_lookup=False))
    assert not _decide(strict, world_store, "doctorA", "read", resources["none"]).allowed
    assert _decide(strict, world_store, "doctorA", "read", resources["rel"]).allowed


# -- writes --------------------------------------------------------------------------------------

def _at(resource_type: str, element: str, organization: str) -> dict:
    return {"resourceType": resource_type, "id": "x", element: {"reference": f"Organization/{organization}"}}


WRITES = [
    ("doctorA", "create", observation("new", "rel", None), True),  # relationship
    ("doctorA", "create", observation("new", "none", None), False),  # no relationship
    ("doctorA", "create", observation("new", "deny", None), True),  # care records need no sharing consent
    ("doctorA", "create", world.encounter("e", "none", "hA", "arrived", 0, None), True),  # care starts at A
    ("doctorA", "create", world.encounter("e", "none", "hB", "arrived", 0, None), False),
    ("doctorA", "create", {"resourceType": "Patient", "id": "newborn"}, True),
    ("doctorA", "update", {"resourceType": "Organization", "id": "hA", "name": "x"}, False),
    ("doctorA", "create", {"resourceType": "AuditEvent", "id": "a"}, False),
    ("child", "create", observation("home-bp", "child", None), True),
    ("child", "create", observation("home-bp", "parent", None), True),  # proxy
    ("child", "create", observation("home-bp", "rel", None), False),
    ("child", "create", world.condition("self-diagnosis", "child", None), False),
    ("adminA", "update", {"resourceType": "Organization", "id": "hA", "name": "Hospital A"}, True),
    ("adminA", "create", _at("PractitionerRole", "organization", "deptA"), True),
    ("adminA", "create", _at("PractitionerRole", "organization", "hB"), False),
    ("adminA", "create", observation("new", "rel", None), False),
    ("regulator", "create", {"resourceType": "MeasureReport", "id": "m"}, False),
    ("cdc", "create", {"resourceType": "MeasureReport", "id": "m"}, True),
    ("cdc", "create", observation("new", "none", None), False),
    ("insurer", "create", _at("ClaimResponse", "insurer", "payer"), True),
    ("insurer", "create", _at("ClaimResponse", "insurer", "hB"), False),
    ("insurer", "create", _at("Claim", "insurer", "payer"), False),
    ("device", "create", observation("reading", "rel", None), True),
    ("device", "update", observation("reading", "rel", None), True),
    ("device", "create", observation("reading", "none", None), False),  # not its bound patient
    ("device", "create", world.condition("c", "rel", None), False),
    ("system", "create", observation("new", "none", None), True),
    ("systemA", "create", observation("new", "none", None), False),
]


@pytest.mark.parametrize("who,action,resource,expected", WRITES,
                         ids=[f"{w}-{a}-{r['resourceType']}-{i}" for i, (w, a, r, _e) in enumerate(WRITES)])
def test_write_matrix(world_store, policy, who, action, resource, expected):
    decision = _decide(policy, world_store, who, action, resource)
    assert decision.allowed is expected, decision.reason


def test_break_the_glass_write(world_store, policy):
    doctor = world.principal("doctorA").claiming_break_glass("emergency")
    decision = _decide(policy, world_store, doctor, "create", observation("new", "none", None))
    assert decision.allowed and decision.break_glass


def test_staff_delete_only_their_institutions_records(world_store, policy, resources):
    assert _decide(policy, world_store, "doctorA", "delete", resources["obs-none-A"]).allowed
    assert not _decide(policy, world_store, "doctorA", "delete", resources["obs-rel-B"]).allowed


@pytest.mark.parametrize("who", ["system", "doctorA", "child", "adminA"])
@pytest.mark.parametrize("action", ["update", "patch", "delete"])
def test_audit_events_are_never_changed(world_store, policy, resources, who, action):
    decision = _decide(policy, world_store, who, action, resources["audit-rel"])
    assert not decision.allowed and decision.status == 405


# -- scopes --------------------------------------------------------------------------------------

def test_scopes_narrow_what_the_role_allows(world_store, policy, resources):
    assert not _decide(policy, world_store, "doctorA", "read", resources["cond-rel-B"],
                       scope="user/Observation.rs").allowed
    assert _decide(policy, world_store, "doctorA", "read", resources["obs-rel-B"], scope="user/Observation.rs").allowed


def test_scope_escalation_read_token_cannot_write(world_store, policy):
    decision = _decide(policy, world_store, "doctorA", "create", observation("x", "rel", None),
                       scope="user/Observation.rs")
    assert not decision.allowed and "scopes" in decision.reason


def test_query_narrowed_scope(world_store, policy, resources):
    assert not _decide(policy, world_store, "doctorA", "read", resources["obs-rel-B"],
                       scope="user/Observation.rs?category=laboratory").allowed


def test_patient_scopes_bind_to_the_launch_patient(world_store, policy, resources):
    own = dict(scope="patient/*.rs", patient="child")
    assert _decide(policy, world_store, "child", "read", resources["obs-child"], **own).allowed
    assert not _decide(policy, world_store, "child", "read", resources["obs-parent"], **own).allowed
    assert _decide(policy, world_store, "child", "read", resources["hA"], **own).allowed
    parent = dict(scope="patient/*.rs", patient="parent")
    assert _decide(policy, world_store, "child", "read", resources["obs-parent"], **parent).allowed


# -- searches and operations ---------------------------------------------------------------------

SEARCHES = [
    ("regulator", "Patient", False), ("regulator", "MeasureReport", True), ("regulator", "Observation", False),
    ("device", "Observation", False), ("insurer", "Claim", True), ("insurer", "Observation", False),
    ("cdc", "Condition", True), ("doctorA", "Observation", True), ("doctorA", "AuditEvent", False),
    ("child", "AuditEvent", True), ("adminA", "Observation", False), ("adminA", "Practitioner", True),
]


@pytest.mark.parametrize("who,resource_type,expected", SEARCHES)
def test_search_matrix(world_store, policy, who, resource_type, expected):
    with world_store.session() as uow:
        decision = policy.decide(world.principal(who), "search-type", resource_type, None, uow)
    assert decision.allowed is expected, decision.reason


def test_aggregate_operations(world_store, policy):
    with world_store.session() as uow:
        assert policy.decide(world.principal("regulator"), "$evaluate-measure", "Measure", None, uow).allowed
        assert not policy.decide(world.principal("child"), "$evaluate-measure", "Measure", None, uow).allowed
        assert not policy.decide(world.principal("insurer"), "$evaluate-measure", "Measure", None, uow).allowed


def test_everything_is_a_read_of_the_patient(world_store, policy, resources):
    with world_store.session() as uow:
        assert policy.decide(world.principal("child"), "$everything", "Patient", resources["child"], uow).allowed
        assert not policy.decide(world.principal("regulator"), "$everything", "Patient", resources["none"], uow).allowed


# -- the search restriction agrees with the read decisions ---------------------------------------

@pytest.mark.parametrize("who", sorted(READS) + ["doctorA-btg"])
def test_search_restriction_shows_exactly_what_reads_allow(world_store, policy, resources, who):
    if who == "doctorA-btg":
        principal = world.principal("doctorA").claiming_break_glass("emergency")
    else:
        principal = world.principal(who)
    with world_store.session() as uow:
        restriction = policy.search_restriction(principal, None, uow, patients=PATIENTS)
        matches = stored_matcher(uow)
        shown = {i for i, r in resources.items() if visible(restriction, r, matches=matches)}
        allowed = {i for i, r in resources.items() if policy.decide(principal, "read", r["resourceType"], r, uow)}
    assert shown == allowed


def test_restrictions_by_role_alone_are_worked_out_once_per_kind_of_caller(world_store, policy):
    with world_store.session() as uow:
        first = policy.search_restriction(world.principal("insurer"), "Claim", uow)
        assert policy.search_restriction(world.principal("insurer"), "Claim", uow) is first
        narrowed = world.principal("insurer", scope="user/Claim.rs?status=active")
        assert policy.search_restriction(narrowed, "Claim", uow).criteria != first.criteria
        doctor = world.principal("doctorA")  # staff see by relationships and Consents: never kept
        assert policy.search_restriction(doctor, "Observation", uow) is not \
            policy.search_restriction(doctor, "Observation", uow)


def test_search_restriction_for_staff(world_store, policy):
    with world_store.session() as uow:
        restriction = policy.search_restriction(world.principal("doctorA"), "Observation", uow)
    assert restriction.patient_ids() >= {"rel", "permit", "partial", "task"}
    assert not restriction.patient_ids() & {"none", "deny", "old", "parent"}
    assert (AUTHOR_SYSTEM, "Organization/hA") in restriction.tags
    assert restriction.unattached


def test_search_restriction_with_narrowed_scope(world_store, policy, resources):
    doctor = world.principal("doctorA", scope="user/Observation.rs?category=laboratory")
    with world_store.session() as uow:
        restriction = policy.search_restriction(doctor, "Observation", uow)
    assert restriction.criteria["Observation"] == ((("category", "laboratory"),),)
    assert not visible(restriction, resources["obs-rel-B"])


def test_search_restriction_without_search_scope_shows_nothing(world_store, policy):
    with world_store.session() as uow:
        restriction = policy.search_restriction(world.principal("doctorA", scope="user/Observation.r"),
                                                "Observation", uow)
    assert restriction.nothing


def test_stamp_author_replaces_forged_tags_and_keeps_earlier_authors():
    doctor = world.principal("doctorA")
    forged = observation("x", "rel", "hB")
    stamped = stamp_author(doctor, forged)
    assert [t["code"] for t in stamped["meta"]["tag"]] == ["Organization/hA"]
    updated = stamp_author(world.principal("doctorB"), observation("x", "rel", None), current=stamped)
    assert [t["code"] for t in updated["meta"]["tag"]] == ["Organization/hA", "Organization/hB"]
