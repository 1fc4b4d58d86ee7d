"""Relationships the policy rests on, read from FHIR resources through search.

- affiliation: the roles and organizations of a Practitioner (active PractitionerRoles; an
  organization counts with its whole institution: the top of its `partOf` chain and every unit under it);
- treatment relationship of a patient with an institution: an Encounter at it that is under way or
  ended within the treatment window, an active EpisodeOfCare it manages, an active CareTeam it or the
  practitioner takes part in, an accepted or ongoing Task (referral, consultation) it or the
  practitioner owns, or the practitioner being the patient's signed family doctor
  (Patient.generalPractitioner);
- proxy: a RelatedPerson of another patient that is the user (the user's own account, or a
  RelatedPerson sharing an identifier with the user's Patient, e.g. the resident ID number).
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from ihs.auth.principal import PRACTITIONER_ROLE_CODES
from ihs.store.search import find

ACTIVE_ENCOUNTER = "planned,arrived,triaged,in-progress,onleave"
ACTIVE_EPISODE = "active,waitlist,onhold"
ACTIVE_TASK = "accepted,ready,in-progress,on-hold"
LIMIT = 100_000


class TtlCache:
    """A small per-process cache whose entries expire after `seconds` (0: nothing is kept)."""

    def __init__(self, seconds: float, size: int = 50_000):
        self.seconds = seconds
        self.size = size
        self._items: dict = {}
        self._lock = threading.Lock()

    def get(self, key, compute):
        if self.seconds <= 0:
            return compute()
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = compute()
        self.put(key, value)
        return value

    def peek(self, key):
        """The cached value, or None when absent or expired."""
        with self._lock:
            hit = self._items.get(key)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def put(self, key, value) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.seconds, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _ref_ids(references, res_type: str) -> list[str]:
    ids = []
    for ref in references:
        value = (ref.get("reference") or "") if isinstance(ref, dict) else (ref or "")
        parts = value.split("/_history/")[0].split("/")
        if len(parts) >= 2 and parts[-2] == res_type:
            ids.append(parts[-1])
    return ids


# -- affiliation ---------------------------------------------------------------------------------

def affiliation(uow, practitioner: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """(roles, organizations) of `Practitioner/<id>` from its active PractitionerRoles."""
    roles, units = set(), []
    for stored in find(uow, "PractitionerRole", [("practitioner", practitioner), ("active", "true")], limit=200):
        role = stored.resource()
        for concept in role.get("code", []):
            for coding in concept.get("coding", []):
                if coding.get("code") in PRACTITIONER_ROLE_CODES:
                    roles.add(PRACTITIONER_ROLE_CODES[coding["code"]])
        for org_id in _ref_ids([role.get("organization")], "Organization"):
            units.extend(institution_units(uow, org_id))
    return frozenset(roles), tuple(dict.fromkeys(units))


def institution_units(uow, organization_id: str) -> list[str]:
    """`Organization/<id>` of the institution `organization_id` belongs to and of all its units."""
    top, seen = organization_id, {organization_id}
    while True:
        stored = uow.current("Organization", top)
        parent = _ref_ids([stored.resource().get("partOf")], "Organization") if stored and not stored.deleted else []
        if not parent or parent[0] in seen:
            break
        top = parent[0]
        seen.add(top)
    units, frontier = [top], [top]
    while frontier:
        children = find(uow, "Organization", [("partof", ",".join(f"Organization/{i}" for i in frontier))], limit=1000)
        frontier = [c.id for c in children if c.id not in units]
        units.extend(frontier)
    return [f"Organization/{i}" for i in units]


# -- treatment relationships ---------------------------------------------------------------------

def _window_start(days: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def relationship_queries(organizations: tuple[str, ...], practitioner: str | None, window_days: int):
    """(resource type, criteria, patient reference path) of every kind of treatment relationship."""
    orgs = ",".join(organizations)
    people = ",".join(filter(None, [orgs, practitioner]))
    queries = []
    if orgs:
        queries += [
            ("Encounter", [("service-provider", orgs), ("status", ACTIVE_ENCOUNTER)], "subject"),
            ("Encounter", [("service-provider", orgs), ("date", f"ge{_window_start(window_days)}"),
                           ("status:not", "cancelled"), ("status:not", "entered-in-error")], "subject"),
            ("EpisodeOfCare", [("organization", orgs), ("status", ACTIVE_EPISODE)], "patient"),
        ]
    if people:
        queries += [
            ("CareTeam", [("participant", people), ("status", "active")], "subject"),
            ("Task", [("owner", people), ("status", ACTIVE_TASK)], "for"),
        ]
    if practitioner:
        queries.append(("Patient", [("general-practitioner", practitioner)], None))
    return queries


def has_relationship(uow, patient: str, organizations: tuple[str, ...], practitioner: str | None,
                     window_days: int) -> bool:
    """Whether Patient/<patient> has an active treatment relationship with the institution or practitioner."""
    for res_type, criteria, _path in relationship_queries(organizations, practitioner, window_days):
        key = "_id" if res_type == "Patient" else "patient"
        if find(uow, res_type, criteria + [(key, patient if key == "_id" else f"Patient/{patient}")], limit=1):
            return True
    return False


def related_patients(uow, organizations: tuple[str, ...], practitioner: str | None, window_days: int,
                     limit: int = LIMIT) -> tuple[frozenset[str], bool]:
    """Ids of every patient with an active treatment relationship with the institution or practitioner,
    and whether the list is complete (no kind of relationship had more than `limit` resources)."""
    found: set[str] = set()
    complete = True
    for res_type, criteria, path in relationship_queries(organizations, practitioner, window_days):
        matches = find(uow, res_type, criteria, limit=limit)
        complete = complete and len(matches) < limit
        for stored in matches:
            if path is None:
                found.add(stored.id)
            else:
                found.update(_ref_ids([stored.resource().get(path)], "Patient"))
    return frozenset(found), complete


# -- proxies -------------------------------------------------------------------------------------

def proxy_persons(uow, fhir_user: str) -> list[dict]:
    """The active RelatedPersons that are this user: the user itself, or sharing an identifier with its Patient."""
    kind, _, user_id = fhir_user.partition("/")
    if kind == "RelatedPerson":
        stored = uow.current("RelatedPerson", user_id)
        people = [stored.resource()] if stored and not stored.deleted else []
    elif kind == "Patient":
        stored = uow.current("Patient", user_id)
        if not stored or stored.deleted:
            return []
        identifiers = [f"{i['system']}|{i['value']}" for i in stored.resource().get("identifier", [])
                       if i.get("system") and i.get("value")]
        if not identifiers:
            return []
        people = [s.resource() for s in find(uow, "RelatedPerson", [("identifier", ",".join(identifiers))], limit=100)]
    else:
        return []
    return [p for p in people if p.get("active", True)]


def privacy_consents(uow, patients: list[str]) -> dict[str, list[dict]]:
    """The active Consents of each patient (all of them, in chunks of one search each)."""
    by_patient: dict[str, list[dict]] = {p: [] for p in patients}
    for start in range(0, len(patients), 200):
        chunk = patients[start:start + 200]
        refs = ",".join(f"Patient/{p}" for p in chunk)
        for stored in find(uow, "Consent", [("patient", refs), ("status", "active")], limit=LIMIT):
            consent = stored.resource()
            for patient in _ref_ids([consent.get("patient")], "Patient"):
                if patient in by_patient:
                    by_patient[patient].append(consent)
    return by_patient
