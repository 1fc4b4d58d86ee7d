"""A small health network for policy tests: two hospitals, staff, patients in every situation.

Hospital A (hA, with department deptA) and hospital B (hB). Patients:
- rel: an Encounter at deptA ended 10 days ago (relationship with A), no Consent;
- none: no relationship with A;
- permit: an Encounter in progress at hA and a Consent permitting hA;
- deny: an active EpisodeOfCare at hA and a Consent denying all sharing;
- partial: a CareTeam with drA, a Consent permitting all but Conditions and data labelled R;
- task: an accepted referral Task owned by hA;
- old: an Encounter at hA ended 400 days ago (outside the treatment window);
- parent / child: child's user is the parent's RelatedPerson (same resident ID) with a permitting Consent.
Records carry the authoring institution's tag; most were written at B.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ihs.auth.principal import Principal
from ihs.auth.restriction import AUTHOR_SYSTEM, NOTIFIABLE
from ihs.auth.scopes import parse_scopes
from ihs.fhir.validation import validate

RESIDENT_ID = "urn:oid:2.16.156.10011.1.1"
PRIVACY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]}
CONSENT_CATEGORY = [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}]
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def when(days: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ref(value: str) -> dict:
    return {"reference": value}


def tagged(resource: dict, author: str | None, *, labels=(), tags=()) -> dict:
    meta = {}
    tag_list = [{"system": s, "code": c} for s, c in tags]
    if author:
        tag_list.append({"system": AUTHOR_SYSTEM, "code": f"Organization/{author}"})
    if tag_list:
        meta["tag"] = tag_list
    if labels:
        meta["security"] = [{"system": CONFIDENTIALITY, "code": c} for c in labels]
    if meta:
        resource["meta"] = meta
    return resource


def observation(id_: str, patient: str, author: str | None, **kw) -> dict:
    return tagged({"resourceType": "Observation", "id": id_, "status": "final",
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                             "code": kw.pop("category", "vital-signs")}]}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                   "subject": ref(f"Patient/{patient}"), "valueQuantity": {"value": 72, "unit": "/min"}}, author, **kw)


def condition(id_: str, patient: str, author: str | None, **kw) -> dict:
    return tagged({"resourceType": "Condition", "id": id_, "subject": ref(f"Patient/{patient}"),
                   "code": {"text": "hypertension"}}, author, **kw)


def encounter(id_: str, patient: str, org: str, status: str, start: float, end: float | None) -> dict:
    period = {"start": when(start)}
    if end is not None:
        period["end"] = when(end)
    return tagged({"resourceType": "Encounter", "id": id_, "status": status,
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "subject": ref(f"Patient/{patient}"), "serviceProvider": ref(f"Organization/{org}"),
                   "period": period}, org)


def consent(id_: str, patient: str, provision: dict | None, policy_rule: str | None = None) -> dict:
    resource = {"resourceType": "Consent", "id": id_, "status": "active", "scope": PRIVACY,
                "category": CONSENT_CATEGORY, "patient": ref(f"Patient/{patient}"), "dateTime": when(-30)}
    if provision:
        resource["provision"] = provision
    if policy_rule:
        resource["policyRule"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                              "code": policy_rule}]}
    return resource


def actor(reference: str) -> dict:
    return {"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                 "code": "IRCP"}]}, "reference": ref(reference)}


def resources() -> list[dict]:
    """Every resource of the world."""
    orgs = [
        {"resourceType": "Organization", "id": "hA", "name": "Hospital A"},
        {"resourceType": "Organization", "id": "deptA", "name": "Cardiology, Hospital A",
         "partOf": ref("Organization/hA")},
        {"resourceType": "Organization", "id": "hB", "name": "Hospital B"},
        {"resourceType": "Organization", "id": "payer", "name": "Insurer"},
        {"resourceType": "Organization", "id": "other-payer", "name": "Another insurer"},
    ]
    staff = []
    for pid, org, code in [("drA", "deptA", "doctor"), ("nurseA", "hA", "nurse"), ("pharmA", "hA", "pharmacist"),
                           ("drB", "hB", "doctor")]:
        staff.append({"resourceType": "Practitioner", "id": pid, "name": [{"text": pid}]})
        staff.append({"resourceType": "PractitionerRole", "id": f"role-{pid}", "active": True,
                      "practitioner": ref(f"Practitioner/{pid}"), "organization": ref(f"Organization/{org}"),
                      "code": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/practitioner-role",
                                            "code": code}]}]})
    patients = [{"resourceType": "Patient", "id": p, "name": [{"text": p}]}
                for p in ("rel", "none", "permit", "deny", "partial", "task", "old", "parent")]
    patients.append({"resourceType": "Patient", "id": "child", "name": [{"text": "child"}],
                     "identifier": [{"system": RESIDENT_ID, "value": "330502199001011234"}]})
    care = [
        encounter("enc-rel", "rel", "deptA", "finished", -10, -10),
        encounter("enc-permit", "permit", "hA", "in-progress", -1, None),
        encounter("enc-old", "old", "hA", "finished", -400, -400),
        encounter("enc-none-B", "none", "hB", "finished", -5, -5),
        tagged({"resourceType": "EpisodeOfCare", "id": "eoc-deny", "status": "active", "patient": ref("Patient/deny"),
                "managingOrganization": ref("Organization/hA")}, "hA"),
        tagged({"resourceType": "CareTeam", "id": "team-partial", "status": "active",
                "subject": ref("Patient/partial"), "participant": [{"member": ref("Practitioner/drA")}]}, "hB"),
        tagged({"resourceType": "Task", "id": "task-referral", "status": "accepted", "intent": "order",
                "code": {"text": "referral"}, "for": ref("Patient/task"), "owner": ref("Organization/hA")}, "hB"),
        {"resourceType": "RelatedPerson", "id": "rp-child", "active": True, "patient": ref("Patient/parent"),
         "identifier": [{"system": RESIDENT_ID, "value": "330502199001011234"}],
         "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                       "code": "CHILD"}]}]},
    ]
    consents = [
        consent("consent-permit", "permit", {"type": "permit", "actor": [actor("Organization/hA")]}),
        consent("consent-deny", "deny", {"type": "deny"}),
        consent("consent-partial", "partial", {"type": "permit", "provision": [
            {"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}]},
            {"type": "deny", "securityLabel": [{"system": CONFIDENTIALITY, "code": "R"}]}]}),
        consent("consent-proxy", "parent", {"type": "permit", "actor": [actor("RelatedPerson/rp-child")]}),
    ]
    records = [
        observation("obs-rel-B", "rel", "hB"),
        observation("obs-none-B", "none", "hB"),
        observation("obs-none-A", "none", "hA"),
        observation("obs-permit-B", "permit", "hB"),
        observation("obs-deny-B", "deny", "hB"),
        observation("obs-deny-A", "deny", "hA"),
        observation("obs-partial-B", "partial", "hB"),
        observation("obs-partial-R", "partial", "hB", labels=("R",)),
        condition("cond-partial-B", "partial", "hB"),
        condition("cond-rel-B", "rel", "hB"),
        observation("obs-task-B", "task", "hB"),
        observation("obs-old-B", "old", "hB"),
        observation("obs-parent", "parent", "hB"),
        observation("obs-child", "child", "hB", category="laboratory"),
        condition("cond-notifiable", "none", "hB", tags=(NOTIFIABLE,)),
        tagged({"resourceType": "MedicationRequest", "id": "med-rel-B", "status": "active", "intent": "order",
                "medicationCodeableConcept": {"text": "amlodipine"}, "subject": ref("Patient/rel")}, "hB"),
        {"resourceType": "Coverage", "id": "cov-rel", "status": "active", "beneficiary": ref("Patient/rel"),
         "payor": [ref("Organization/payer")]},
        {"resourceType": "Claim", "id": "claim-payer", "status": "active", "use": "claim", "created": when(-3),
         "type": {"text": "institutional"}, "patient": ref("Patient/rel"), "provider": ref("Organization/hA"),
         "priority": {"text": "normal"}, "insurer": ref("Organization/payer"),
         "insurance": [{"sequence": 1, "focal": True, "coverage": ref("Coverage/cov-rel")}]},
        {"resourceType": "Claim", "id": "claim-other", "status": "active", "use": "claim", "created": when(-3),
         "type": {"text": "institutional"}, "patient": ref("Patient/none"), "provider": ref("Organization/hB"),
         "priority": {"text": "normal"}, "insurer": ref("Organization/other-payer"),
         "insurance": [{"sequence": 1, "focal": True, "coverage": ref("Coverage/cov-none")}]},
        {"resourceType": "MeasureReport", "id": "mr-1", "status": "complete", "type": "summary",
         "measure": "https://ihs.example.org/fhir/Measure/hypertension-control",
         "period": {"start": "2026-01-01", "end": "2026-06-30"}},
        {"resourceType": "Schedule", "id": "sched-B", "actor": [ref("Location/loc-B")]},
        {"resourceType": "AuditEvent", "id": "audit-rel", "type": {"code": "rest"}, "recorded": when(-1),
         "agent": [{"requestor": True, "who": ref("Practitioner/drB")}], "source": {"observer": {"display": "IHS"}},
         "entity": [{"what": ref("Patient/rel")}]},
        {"resourceType": "Device", "id": "bp-1", "status": "active", "patient": ref("Patient/rel")},
    ]
    return orgs + staff + patients + care + consents + records


def load(store) -> dict[str, dict]:
    """Store the world; returns its resources by id."""
    by_id = {}
    with store.session(write=True) as uow:
        for resource in resources():
            validate(resource)
            uow.create(resource)
            by_id[resource["id"]] = resource
    return by_id


ALL = "user/*.cruds"


def principal(name: str, **changes) -> Principal:
    """The principals of the world, by name."""
    a_units = ("Organization/hA", "Organization/deptA")
    people = {
        "doctorA": dict(roles={"practitioner"}, fhir_user="Practitioner/drA", organizations=a_units),
        "nurseA": dict(roles={"nurse"}, fhir_user="Practitioner/nurseA", organizations=a_units),
        "pharmacistA": dict(roles={"pharmacist"}, fhir_user="Practitioner/pharmA", organizations=a_units),
        "doctorB": dict(roles={"practitioner"}, fhir_user="Practitioner/drB", organizations=("Organization/hB",)),
        "child": dict(roles={"patient"}, fhir_user="Patient/child"),
        "adminA": dict(roles={"org-admin"}, organizations=a_units),
        "regulator": dict(roles={"regulator"}, organizations=("Organization/hB",)),
        "cdc": dict(roles={"cdc-officer"}),
        "insurer": dict(roles={"insurer"}, organizations=("Organization/payer",)),
        "device": dict(roles={"device"}, fhir_user="Device/bp-1", patient="rel", scope="system/Observation.cu"),
        "system": dict(roles={"system"}, scope="system/*.cruds"),
        "systemA": dict(roles={"system"}, organizations=a_units, scope="system/*.cruds"),
    }
    spec = dict(people[name])
    spec.update(changes)
    scope = spec.pop("scope", ALL)
    return Principal(subject=name, roles=frozenset(spec.pop("roles")), scopes=parse_scopes(scope), **spec)
