"""The access policy: one module deciding every read, search, write and operation.

- `decide(principal, action, resource_type, resource=None, uow=None) -> Decision` for one
  interaction on one resource (read, vread, history-instance, create, update, patch, delete), at
  type level for searches, history and export, or for an operation (`action="$everything"`);
- `search_restriction(principal, resource_type, uow) -> Restriction`: which resources a search
  (and its includes, history, $everything, export) may return, as data the search compiler ANDs
  into its query (ihs/auth/restriction.py defines its meaning);
- `break_glass_patients(restriction, resource_type)`: whose records a restriction shows only by
  break-the-glass (for the grant, the notifications and the BTG audit of a search or an export).

A decision is the token's scopes (they only narrow) AND the rules of the principal's roles (any
role may allow). The rules, by role:

- patient: their own record (Patient compartment) and the records of those they are proxy for
  (a RelatedPerson of that patient who is the user, and a Consent of that patient permitting it);
- practitioner, nurse, pharmacist: records their institution authored (meta.tag, see
  `stamp_author`), resources in no patient's record, directory data, Patient demographics (lookup,
  configurable), and a patient's records from anywhere when their institution has an active
  treatment relationship with the patient AND the patient's Consents permit (ihs/auth/consent.py);
  pharmacists only the medication-related types; break-the-glass opens any patient's record;
- org-admin: directory data, and writes to their own organization's directory;
- regulator: de-identified aggregates (MeasureReport, Measure, Library) and directory data only;
- cdc-officer: aggregates, directory data and notifiable-disease reports (meta.tag);
- insurer: Coverage, Claim, ClaimResponse, ExplanationOfBenefit naming it as payor/insurer;
- device: creates and updates Observations of its bound patient, nothing else;
- system (backend client): everything its scopes allow; one registered for an organization acts
  as that institution's staff does (no break-the-glass).
AuditEvents are never updated or deleted (405).

For an update, patch or delete the API asks twice: `read` on the current version, then the
change on the new content (update, patch) or the current one (delete).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from weakref import WeakSet

from ihs.auth import policy_version
from ihs.auth import relationships as rel
from ihs.auth.config import PolicyConfig
from ihs.auth.consent import PERMIT, Access, Classes, decide_consents, permitted_classes
from ihs.auth.errors import Forbidden
from ihs.auth.policy_version import RELATIONSHIP_TYPES
from ihs.auth.principal import (CDC_OFFICER, CLINICAL_ROLES, DEVICE, INSURER, ORG_ADMIN, PATIENT, PHARMACIST,
                                REGULATOR, SYSTEM, Principal)
from ihs.auth.resource_classes import (AGGREGATE_TYPES, CARE_STARTING, DIRECTORY_TYPES, INSURANCE_TYPES, OPEN_TYPES,
                                       PATIENT_WRITABLE, PHARMACY_TYPES, STAFF_HIDDEN, SURVEILLANCE_WRITABLE)
from ihs.auth.restriction import (EVERYTHING, NOTHING, NOTIFIABLE, PatientGrant, Restriction, author_tag, codings,
                                  patients_of)
from ihs.auth.scopes import granting, scope_criteria, scope_permits
from ihs.fhir.structure import resource_types

READS = frozenset({"read", "vread", "history-instance"})
SEARCHES = frozenset({"search", "search-type", "search-system", "search-compartment", "history-type",
                      "history-system", "export"})
WRITES = frozenset({"create", "update", "patch"})
AGGREGATE = "aggregate"
BREAK_GLASS = "break-the-glass"  # the `why` of the PatientGrant a claim or an open emergency grant adds
_FIXED_ROLES = frozenset({SYSTEM, ORG_ADMIN, REGULATOR, CDC_OFFICER, INSURER})  # restrictions that read no records

# what each operation needs: an interaction's permission, or "aggregate" (de-identified results)
OPERATIONS: dict[str, str] = {
    "$everything": "read", "$export": "export", "$match": "search", "$lastn": "search", "$stats": "search",
    "$validate": "search", "$meta": "read", "$expand": "search", "$lookup": "search", "$validate-code": "search",
    "$translate": "search", "$subsumes": "search", "$closure": "search", "$book": "create", "$find": "search",
    "$evaluate-measure": AGGREGATE, "$collect-data": AGGREGATE, "$care-gaps": AGGREGATE,
}


def register_operation(name: str, access: str) -> None:
    """Declare what an operation needs: "read", "search", "create", "update", "export" or "aggregate"."""
    OPERATIONS[name if name.startswith("$") else f"${name}"] = access


@dataclass(frozen=True)
class Decision:
    """The policy's answer; `break_glass` says the access is allowed only by an emergency claim or grant,
    and `patients` names whose records the access touches (for the audit record)."""

    allowed: bool
    reason: str
    status: int = 200
    break_glass: bool = False
    patients: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return self.allowed

    def check(self) -> "Decision":
        """Raise Forbidden (403, or 405 for interactions that never are allowed) unless allowed."""
        if not self.allowed:
            raise Forbidden(self.reason, self.status)
        return self


def _allow(reason: str, **kwargs) -> Decision:
    return Decision(True, reason, **kwargs)


def _deny(reason: str, status: int = 403) -> Decision:
    return Decision(False, reason, status)


@dataclass
class _Context:
    """What one decision needs besides the principal: the resource and the unit of work."""

    interaction: str
    resource_type: str | None
    resource: dict | None
    uow: object

    @cached_property
    def patients(self) -> frozenset[str]:
        return patients_of(self.resource) if self.resource else frozenset()

    @cached_property
    def tags(self):
        return codings(self.resource, "tag") if self.resource else frozenset()

    @cached_property
    def labels(self):
        return codings(self.resource, "security") if self.resource else frozenset()


class Policy:
    """The rules, their configuration and per-process caches of relationships and Consents."""

    def __init__(self, config: PolicyConfig | None = None):
        self.config = config or PolicyConfig()
        self._cache = rel.TtlCache(self.config.cache_seconds)
        self._cached_version: tuple[int, int] | None = None  # (database, policy_version) the cache was filled at
        self._checked: WeakSet = WeakSet()  # units of work that compared it already
        self._fixed: dict[tuple, Restriction] = {}  # restrictions that read no records (see search_restriction)

    def forget(self) -> None:
        """Drop cached relationships and Consents (after a change to the resources they come from)."""
        self._cache.clear()

    def _up_to_date(self, uow) -> None:
        """Drop the cache if a Consent or relationship changed since it was filled, in any worker.

        One read of the shared counter per unit of work (ihs/auth/policy_version.py).
        """
        if uow is None or uow in self._checked or not policy_version.installed(uow.store.engine):
            return
        self._checked.add(uow)
        seen = (id(uow.store.engine), policy_version.current(uow.conn))
        if seen != self._cached_version:
            self._cache.clear()
            self._cached_version = seen

    # -- decide --------------------------------------------------------------------------------

    def decide(self, principal: Principal, action: str, resource_type: str | None, resource: dict | None = None,
               uow=None) -> Decision:
        """Whether `principal` may do `action` on `resource_type` (and `resource`, for instance-level actions)."""
        interaction = OPERATIONS.get(action, "read" if resource is not None else "search") \
            if action.startswith("$") else action
        if resource_type == "AuditEvent" and interaction in ("update", "patch", "delete"):
            return _deny("AuditEvents are a tamper-evident record: they cannot be changed or deleted", 405)
        if interaction == AGGREGATE:
            return self._aggregate(principal, action, resource_type)
        if interaction not in READS | SEARCHES | WRITES | {"delete"}:
            raise ValueError(f"unknown action {action!r}")
        if interaction in READS | WRITES | {"delete"} and resource is None:
            raise ValueError(f"{action} needs the resource to decide on")
        scoped = self._scopes(principal, interaction, resource_type, resource)
        if not scoped.allowed:
            return scoped
        ctx = _Context(interaction, resource_type, resource, uow)
        decisions = [self._role(role, principal, ctx) for role in sorted(principal.roles)]
        allowed = [d for d in decisions if d.allowed]
        if allowed:
            return min(allowed, key=lambda d: d.break_glass)
        if not decisions:
            return _deny("the caller has no role")
        return _deny("; ".join(dict.fromkeys(d.reason for d in decisions)), max(d.status for d in decisions))

    def _scopes(self, principal: Principal, interaction: str, resource_type: str | None,
                resource: dict | None) -> Decision:
        if resource_type is None and interaction in SEARCHES:
            if any("s" in s.permissions for s in principal.scopes.clinical):
                return _allow("scopes permit searching (types narrowed by the restriction)")
            return _deny("the access token has no search scope")
        if not scope_permits(principal.scopes, interaction, resource_type, resource):
            return _deny(f"the access token's scopes ({principal.scopes.text or 'none'}) do not permit "
                         f"{interaction} on {resource_type or 'all types'}")
        contexts = {s.context for s in granting(principal.scopes, interaction, resource_type)}
        if contexts == {"patient"} and resource is not None and resource_type not in OPEN_TYPES:
            if not principal.patient:
                return _deny("patient/ scopes need a patient context (launch/patient)")
            if principal.patient not in patients_of(resource):
                return _deny(f"patient/ scopes permit only the record of Patient/{principal.patient}")
        return _allow("scopes permit")

    def _aggregate(self, principal: Principal, action: str, resource_type: str | None) -> Decision:
        if not principal.has_role(REGULATOR, CDC_OFFICER, SYSTEM, ORG_ADMIN, *CLINICAL_ROLES):
            return _deny(f"{action} gives aggregates to staff, regulators and public-health officers only")
        if not scope_permits(principal.scopes, "search", resource_type or "MeasureReport"):
            return _deny(f"the access token's scopes do not permit {action}")
        return _allow("de-identified aggregate")

    def _role(self, role: str, principal: Principal, ctx: _Context) -> Decision:
        rule = {
            PATIENT: self._patient, PHARMACIST: self._staff, ORG_ADMIN: self._org_admin, REGULATOR: self._regulator,
            CDC_OFFICER: self._cdc, INSURER: self._insurer, DEVICE: self._device, SYSTEM: self._system,
        }.get(role, self._staff if role in CLINICAL_ROLES else None)
        if rule is None:
            return _deny(f"unknown role {role!r}")
        return rule(principal, ctx)

    # -- patients ------------------------------------------------------------------------------

    def _patient(self, p: Principal, ctx: _Context) -> Decision:
        t = ctx.resource_type
        if ctx.interaction in SEARCHES:
            return _allow("patient: own record and proxies (search restricted)")
        if t in OPEN_TYPES and ctx.interaction in READS:
            return _allow("directory data")
        own = p.fhir_user_id if p.fhir_user_type == "Patient" else None
        patients = ctx.patients
        if ctx.interaction == "delete":
            return _deny("patients cannot delete records")
        if ctx.interaction in WRITES and t not in PATIENT_WRITABLE:
            return _deny(f"patients cannot write {t}")
        if own and own in patients:
            return _allow("the patient's own record", patients=patients)
        for patient, classes in self.proxies(p, ctx.uow).items():
            if patient in patients and _classes_allow(classes, t, ctx.labels):
                return _allow(f"proxy for Patient/{patient} by Consent", patients=frozenset({patient}))
        return _deny("patients see only their own records and those they are proxy for")

    def proxies(self, p: Principal, uow) -> dict[str, Classes]:
        """Patient id -> what this user may see as their proxy (RelatedPerson + permitting Consent)."""
        if not p.fhir_user or uow is None:
            return {}
        self._up_to_date(uow)

        def compute():
            found: dict[str, Classes] = {}
            for person in rel.proxy_persons(uow, p.fhir_user):
                for patient in rel._ref_ids([person.get("patient")], "Patient"):
                    actors = frozenset({f"RelatedPerson/{person['id']}"})
                    consents = self._consents(uow, [patient])[patient]
                    classes = permitted_classes(consents, actors, "deny")  # a proxy needs an explicit permit
                    if not classes.nothing:
                        found[patient] = classes
            return found

        return self._cache.get(("proxies", p.fhir_user), compute)

    # -- clinical staff ------------------------------------------------------------------------

    def _staff(self, p: Principal, ctx: _Context, *, break_glass: bool = True) -> Decision:
        t = ctx.resource_type
        if t in STAFF_HIDDEN:
            return _deny(f"{t} is not for clinical staff: the server writes it, patients and auditors read it")
        if ctx.interaction in SEARCHES:
            return _allow("staff (search restricted)")
        pharmacist_only = p.has_role(PHARMACIST) and not p.has_role(*(CLINICAL_ROLES - {PHARMACIST}), SYSTEM)
        if ctx.interaction in READS:
            if t in OPEN_TYPES or (t == "Patient" and self.config.staff_patient_lookup):
                return _allow("directory data" if t in OPEN_TYPES else "patient lookup")
        elif t in OPEN_TYPES:
            return _deny(f"{t} is directory data: its organization's administrator maintains it")
        if ctx.tags & {author_tag(o) for o in p.organizations}:
            return _allow("authored by the caller's institution", patients=ctx.patients)
        if ctx.interaction == "delete":
            return _deny("staff delete only records their own institution authored")
        patients = ctx.patients
        if not patients:
            return _allow("not part of a patient's record")
        if pharmacist_only and t not in PHARMACY_TYPES:
            return _deny(f"pharmacists do not see {t}")
        if ctx.interaction in WRITES and self._starts_care(p, ctx):
            return _allow("care at the caller's institution", patients=patients)
        if ctx.interaction == "create" and t == "Patient":
            return _allow("registering a patient", patients=patients)
        reasons = []
        for patient in sorted(patients):
            if not self.has_relationship(p, patient, ctx.uow):
                reasons.append(f"no active treatment relationship with Patient/{patient}")
                continue
            if ctx.interaction in WRITES:
                return _allow("treatment relationship", patients=frozenset({patient}))
            if self.consent_permits(p, patient, t, ctx.labels, ctx.uow):
                return _allow("treatment relationship and the patient's Consent", patients=frozenset({patient}))
            reasons.append(f"the Consent of Patient/{patient} does not permit sharing {t} with the caller")
        if break_glass and p.has_role(*CLINICAL_ROLES):
            opened = patients & self._break_glass_patients(p, ctx.uow)
            if p.break_glass or opened:
                return _allow(f"break-the-glass: {p.break_glass.reason if p.break_glass else 'open grant'}",
                              break_glass=True, patients=opened or patients)
        return _deny("; ".join(reasons))

    def _starts_care(self, p: Principal, ctx: _Context) -> bool:
        element = CARE_STARTING.get(ctx.resource_type)
        if not element:
            return False
        target = (ctx.resource.get(element) or {}).get("reference", "")
        return any(target == o or target.endswith("/" + o) for o in p.organizations)

    def _break_glass_patients(self, p: Principal, uow) -> frozenset[str]:
        from ihs.auth.break_glass import granted_patients

        return granted_patients(uow.conn, p.subject) if uow is not None else frozenset()

    def has_relationship(self, p: Principal, patient: str, uow) -> bool:
        self._up_to_date(uow)
        practitioner = p.fhir_user if p.fhir_user_type == "Practitioner" else None
        listed = self._cache.peek(("related", p.organizations, practitioner))
        if listed is not None:
            related, complete = listed
            if patient in related or complete:
                return patient in related
        key = ("relationship", p.organizations, practitioner, patient)
        return self._cache.get(key, lambda: rel.has_relationship(
            uow, patient, p.organizations, practitioner, self.config.treatment_window_days))

    def related(self, p: Principal, uow) -> frozenset[str]:
        """Every patient with an active treatment relationship with the principal's institution (cached)."""
        self._up_to_date(uow)
        practitioner = p.fhir_user if p.fhir_user_type == "Practitioner" else None
        related, _complete = self._cache.get(("related", p.organizations, practitioner), lambda: rel.related_patients(
            uow, p.organizations, practitioner, self.config.treatment_window_days, self.config.max_listed_patients))
        return related

    def consent_permits(self, p: Principal, patient: str, resource_type: str, labels, uow) -> bool:
        consents = self._consents(uow, [patient])[patient]
        access = Access(_actors(p), resource_type, frozenset(labels))
        return decide_consents(consents, access, self.config.consent_default) == PERMIT

    def _consents(self, uow, patients: list[str]) -> dict[str, list[dict]]:
        self._up_to_date(uow)
        found, missing = {}, []
        for patient in patients:
            hit = self._cache.peek(("consents", patient))
            if hit is None:
                missing.append(patient)
            else:
                found[patient] = hit
        if missing:
            fetched = rel.privacy_consents(uow, missing)
            for patient, consents in fetched.items():
                self._cache.put(("consents", patient), consents)
            found.update(fetched)
        return found

    # -- other roles ---------------------------------------------------------------------------

    def _org_admin(self, p: Principal, ctx: _Context) -> Decision:
        t = ctx.resource_type
        readable = OPEN_TYPES | ({"Patient"} if self.config.staff_patient_lookup else set())
        if ctx.interaction in READS | SEARCHES:
            return _allow("directory data") if t in readable or (t is None and ctx.interaction in SEARCHES) \
                else _deny("organization administrators see directory data only")
        if t not in DIRECTORY_TYPES:
            return _deny(f"organization administrators do not write {t}")
        element = DIRECTORY_TYPES[t]
        resource = ctx.resource
        if t == "Organization" and resource.get("id") in p.organization_ids:
            return _allow("the caller's own organization")
        target = (resource.get(element) or {}).get("reference", "") if element else ""
        if element is None or any(target == o or target.endswith("/" + o) for o in p.organizations):
            return _allow("the caller's organization's directory")
        return _deny(f"{t} does not belong to the caller's organization")

    def _regulator(self, p: Principal, ctx: _Context) -> Decision:
        t = ctx.resource_type
        if ctx.interaction in READS | SEARCHES and (t in OPEN_TYPES | AGGREGATE_TYPES
                                                    or (t is None and ctx.interaction in SEARCHES)):
            return _allow("aggregates and directory data")
        return _deny("regulators see de-identified aggregates only, never individual records")

    def _cdc(self, p: Principal, ctx: _Context) -> Decision:
        t = ctx.resource_type
        if ctx.interaction in SEARCHES:
            return _allow("surveillance data (search restricted)")
        if ctx.interaction in READS:
            if t in OPEN_TYPES | AGGREGATE_TYPES or NOTIFIABLE in ctx.tags:
                return _allow("surveillance data and notifiable-disease reports")
            return _deny("CDC officers see surveillance data and notifiable-disease reports only")
        if ctx.interaction in WRITES and t in SURVEILLANCE_WRITABLE:
            return _allow("surveillance results and alerts")
        return _deny(f"CDC officers do not {ctx.interaction} {t}")

    def _insurer(self, p: Principal, ctx: _Context) -> Decision:
        t = ctx.resource_type
        if ctx.interaction in READS | SEARCHES and (t in OPEN_TYPES or (t is None and ctx.interaction in SEARCHES)):
            return _allow("directory data")
        if t not in INSURANCE_TYPES or ctx.interaction == "delete":
            return _deny("insurers see the Coverage, Claim, ClaimResponse and ExplanationOfBenefit of their members")
        if ctx.interaction in SEARCHES:
            return _allow("the insurer's members (search restricted)")
        if ctx.interaction in WRITES and t == "Claim":
            return _deny("claims are submitted by providers, not insurers")
        field_ = "payor" if t == "Coverage" else "insurer"
        named = ctx.resource.get(field_)
        refs = [r.get("reference", "") for r in (named if isinstance(named, list) else [named]) if isinstance(r, dict)]
        if any(ref == o or ref.endswith("/" + o) for ref in refs for o in p.organizations):
            return _allow("names the caller as insurer", patients=ctx.patients)
        return _deny(f"this {t} does not name the caller's organization as insurer")

    def _device(self, p: Principal, ctx: _Context) -> Decision:
        if ctx.resource_type != "Observation" or ctx.interaction not in ("create", "update"):
            return _deny("devices only write Observations")
        if not p.patient:
            return _deny("the device is not bound to a patient")
        subject = (ctx.resource.get("subject") or {}).get("reference", "")
        if subject not in (f"Patient/{p.patient}",) and not subject.endswith(f"/Patient/{p.patient}"):
            return _deny(f"the device writes only for its bound patient Patient/{p.patient}")
        return _allow("the device's bound patient", patients=frozenset({p.patient}))

    def _system(self, p: Principal, ctx: _Context) -> Decision:
        if not p.organizations:
            return _allow("backend system (scopes apply)", patients=ctx.patients)
        return self._staff(p, ctx, break_glass=False)

    # -- search restriction --------------------------------------------------------------------

    def search_restriction(self, principal: Principal, resource_type: str | None, uow, *,
                           patients: tuple[str, ...] = (), interaction: str = "search") -> Restriction:
        """What a search over `resource_type` (None: all types) by `principal` may return.

        `patients` names the patients the search is about (e.g. `patient=` criteria): with a
        break-the-glass claim, their records become visible (the API then calls
        `break_glass.record_use` for each of `break_glass_patients(restriction, type)`).
        """
        # Systems, administrators, regulators, CDC officers and insurers see by role and scope alone:
        # their restriction is worked out once per kind of caller, not per search.
        fixed = principal.roles <= _FIXED_ROLES and not (SYSTEM in principal.roles and principal.organizations)
        if fixed:
            key = (principal.roles, principal.scopes, principal.organizations, principal.patient, resource_type,
                   interaction)
            found = self._fixed.get(key)
            if found is None:
                if len(self._fixed) > 4096:
                    self._fixed.clear()
                found = self._fixed[key] = self._restriction(principal, resource_type, uow, patients, interaction)
            return found
        return self._restriction(principal, resource_type, uow, patients, interaction)

    def _restriction(self, principal: Principal, resource_type: str | None, uow, patients: tuple[str, ...],
                     interaction: str) -> Restriction:
        parts = [self._role_restriction(role, principal, uow, patients) for role in sorted(principal.roles)]
        restriction = NOTHING
        for part in parts:
            restriction = merge(restriction, part)
        restriction = self._scope_restriction(principal, resource_type, interaction, restriction)
        return restriction.for_type(resource_type) if resource_type else restriction

    def _role_restriction(self, role: str, p: Principal, uow, named: tuple[str, ...]) -> Restriction:
        lookup = frozenset({"Patient"}) if self.config.staff_patient_lookup else frozenset()
        if role == PATIENT:
            grants = []
            if p.fhir_user_type == "Patient":
                grants.append(PatientGrant(frozenset({p.fhir_user_id}), why="own record"))
            grants += _grouped(self.proxies(p, uow), "proxy")
            return Restriction(open_types=OPEN_TYPES, grants=tuple(grants))
        if role in CLINICAL_ROLES or (role == SYSTEM and p.organizations):
            return self._staff_restriction(p, uow, named, lookup, break_glass=role != SYSTEM)
        if role == SYSTEM:
            return EVERYTHING
        if role == ORG_ADMIN:
            return Restriction(types=OPEN_TYPES | lookup, open_types=OPEN_TYPES | lookup)
        if role == REGULATOR:
            visible = OPEN_TYPES | AGGREGATE_TYPES
            return Restriction(types=visible, open_types=visible)
        if role == CDC_OFFICER:
            return Restriction(open_types=OPEN_TYPES | AGGREGATE_TYPES, tags=frozenset({NOTIFIABLE}))
        if role == INSURER:
            orgs = ",".join(p.organizations)
            criteria = {t: (((param, orgs),),) for t, param in INSURANCE_TYPES.items()}
            visible = OPEN_TYPES | frozenset(INSURANCE_TYPES)
            return Restriction(types=visible, open_types=visible, criteria=criteria) if orgs else NOTHING
        return NOTHING

    def _staff_restriction(self, p: Principal, uow, named: tuple[str, ...], lookup: frozenset[str], *,
                           break_glass: bool) -> Restriction:
        pharmacist_only = p.has_role(PHARMACIST) and not p.has_role(*(CLINICAL_ROLES - {PHARMACIST}), SYSTEM)
        limit = PHARMACY_TYPES if pharmacist_only else None
        key = ("grants", p.organizations, p.fhir_user, limit)
        self._up_to_date(uow)
        grants = list(self._cache.get(key, lambda: tuple(_grouped(
            self._classes_of(p, sorted(self.related(p, uow)), uow), "treatment relationship", limit_types=limit))))
        if break_glass:
            opened = set(self._break_glass_patients(p, uow))
            if p.break_glass:
                opened.update(named)
            if opened:
                grants.append(PatientGrant(frozenset(opened), limit, why=BREAK_GLASS))
        return Restriction(types=frozenset(resource_types()) - STAFF_HIDDEN, open_types=OPEN_TYPES | lookup,
                           tags=frozenset(author_tag(o) for o in p.organizations), unattached=True,
                           grants=tuple(grants))

    def _classes_of(self, p: Principal, patients: list[str], uow) -> dict[str, Classes]:
        actors = _actors(p)
        consents = self._consents(uow, patients)
        default = self.config.consent_default
        return {patient: permitted_classes(consents[patient], actors, default) for patient in patients}

    def _scope_restriction(self, p: Principal, resource_type: str | None, interaction: str,
                           restriction: Restriction) -> Restriction:
        types = [resource_type] if resource_type else None
        scopes = granting(p.scopes, interaction, resource_type) if resource_type else \
            [s for s in p.scopes.clinical if "s" in s.permissions]
        if not scopes:
            return NOTHING
        if types is None and all(s.resource_type != "*" for s in scopes):
            allowed = frozenset(s.resource_type for s in scopes)
            restriction = replace(restriction, types=allowed if restriction.types is None
                                  else restriction.types & allowed)
        criteria = dict(restriction.criteria)
        for t in (types or {s.resource_type for s in scopes if s.resource_type != "*"}):
            narrowed = scope_criteria(p.scopes, interaction, t)
            if narrowed:
                criteria[t] = tuple(_and(a, b) for a in narrowed for b in criteria.get(t, ((),)))
        restriction = replace(restriction, criteria=criteria)
        if {s.context for s in scopes} == {"patient"}:
            restriction = replace(restriction, within_patients=frozenset({p.patient}) if p.patient else frozenset())
        return restriction


def break_glass_patients(restriction: Restriction, resource_type: str | None = None) -> frozenset[str]:
    """The patients whose records of `resource_type` (None: of some type) `restriction` shows only by
    break-the-glass (a claim or an open grant), not by a treatment relationship and Consent, a proxy
    or the patient's own access.

    A patient whose treatment grant excludes some labels (a Consent) is opened by break-the-glass too:
    the claim shows the labelled records. Records the caller's institution wrote are ignored here.
    """
    if restriction.everything or restriction.nothing or resource_type in restriction.open_types:
        return frozenset()
    relevant = [g for g in restriction.grants if resource_type is None or g.types is None or resource_type in g.types]
    emergency = [g for g in relevant if g.why == BREAK_GLASS]
    if not emergency:
        return frozenset()
    reach = None if any(g.types is None for g in emergency) else frozenset().union(*(g.types for g in emergency))

    def covers(grant: PatientGrant) -> bool:
        if grant.why == BREAK_GLASS or grant.excluded_labels:
            return False
        return resource_type is not None or grant.types is None or (reach is not None and reach <= grant.types)

    opened = frozenset().union(*(g.patients for g in emergency))
    opened -= frozenset().union(*(g.patients for g in relevant if covers(g)))
    return opened if restriction.within_patients is None else opened & restriction.within_patients


def _and(a: tuple, b: tuple) -> tuple:
    return tuple(dict.fromkeys(a + b))


def _actors(p: Principal) -> frozenset[str]:
    return frozenset(p.organizations) | ({p.fhir_user} if p.fhir_user else set())


def _classes_allow(classes: Classes, resource_type: str | None, labels) -> bool:
    if classes.types is not None and resource_type not in classes.types:
        return False
    return not (frozenset(labels) & classes.excluded_labels)


def _grouped(by_patient: dict[str, Classes], why: str, limit_types: frozenset[str] | None = None):
    """One PatientGrant per distinct set of data classes (most patients share the regional default)."""
    groups: dict[Classes, set[str]] = {}
    for patient, classes in by_patient.items():
        if not classes.nothing:
            groups.setdefault(classes, set()).add(patient)
    for classes, patients in groups.items():
        types = classes.types
        if limit_types is not None:
            types = limit_types if types is None else types & limit_types
        yield PatientGrant(frozenset(patients), types, classes.excluded_labels, why)


def merge(a: Restriction, b: Restriction) -> Restriction:
    """What either restriction shows (the union, for a principal with several roles)."""
    if a.nothing:
        return b
    if b.nothing:
        return a
    types = None if a.types is None or b.types is None else a.types | b.types
    criteria = {t: a.criteria[t] + b.criteria[t] for t in a.criteria.keys() & b.criteria.keys()}
    within = None if a.within_patients is None or b.within_patients is None else a.within_patients | b.within_patients
    return Restriction(everything=a.everything or b.everything, types=types, open_types=a.open_types | b.open_types,
                       tags=a.tags | b.tags, unattached=a.unattached or b.unattached, grants=a.grants + b.grants,
                       excluded_labels=a.excluded_labels & b.excluded_labels, criteria=criteria,
                       within_patients=within)


_policy: Policy | None = None


def default_policy() -> Policy:
    """The process's policy, configured from the environment on first use."""
    global _policy
    if _policy is None:
        _policy = Policy()
    return _policy


def decide(principal: Principal, action: str, resource_type: str | None, resource: dict | None = None,
           uow=None) -> Decision:
    """Whether `principal` may do `action` (an interaction or `$operation`) on `resource_type`/`resource`."""
    return default_policy().decide(principal, action, resource_type, resource, uow)


def search_restriction(principal: Principal, resource_type: str | None, uow, *, patients: tuple[str, ...] = (),
                       interaction: str = "search") -> Restriction:
    """Which resources of `resource_type` (None: all) a search by `principal` may return."""
    return default_policy().search_restriction(principal, resource_type, uow, patients=patients,
                                               interaction=interaction)


def stamp_author(principal: Principal, resource: dict, current: dict | None = None) -> dict:
    """Tag `resource` as authored by the caller's institution (meta.tag), keeping the authors of `current`.

    The API calls it before a create or update; author tags a client sent itself are dropped.
    """
    from ihs.auth.restriction import AUTHOR_SYSTEM

    meta = resource.setdefault("meta", {})
    kept = [t for t in meta.get("tag", []) if t.get("system") != AUTHOR_SYSTEM]
    authors = [t for t in ((current or {}).get("meta") or {}).get("tag", []) if t.get("system") == AUTHOR_SYSTEM]
    if principal.organizations and not any(t.get("code") == principal.organizations[0] for t in authors):
        authors.append({"system": AUTHOR_SYSTEM, "code": principal.organizations[0]})
    if kept or authors:
        meta["tag"] = kept + authors
    elif "tag" in meta:
        del meta["tag"]
    if not meta:
        del resource["meta"]
    return resource


def on_change(store, event) -> None:
    """Event handler (ihs.events): forget cached relationships when the resources behind them change.

    Other workers learn of the change from the shared counter (`Policy._up_to_date`); this handler
    covers databases without it.
    """
    if event.res_type in RELATIONSHIP_TYPES:
        default_policy().forget()
