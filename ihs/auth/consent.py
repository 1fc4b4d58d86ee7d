"""Patient privacy Consents (FHIR R4 Consent, scope `patient-privacy`) evaluated for one access.

A Consent applies to an access when it is active and its root provision's conditions hold (actor,
period, data class, security label, action; an absent condition always holds). Nested provisions
are exceptions to their parent: the deepest provision whose conditions hold decides, permit or deny.
A Consent without provisions states its policyRule: OPTIN permits, OPTOUT denies. Among the
patient's Consents that have an opinion a deny wins; when none has one, the regional default
applies (opt-out region: permit; opt-in region: deny), see `PolicyConfig.default_sharing`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ihs.fhir.definitions import compartments

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
# consent actions that cover another party reading a record
READ_ACTIONS = frozenset({"access", "use", "disclose"})

PERMIT, DENY = "permit", "deny"


@dataclass(frozen=True)
class Access:
    """What a Consent is asked about: who (actor references), which data (type, labels), when."""

    actors: frozenset[str]  # "Organization/x", "Practitioner/y", "RelatedPerson/z", ...
    resource_type: str
    labels: frozenset[tuple[str, str]] = frozenset()  # the resource's meta.security (system, code)
    now: datetime | None = None

    def at(self) -> datetime:
        return self.now or datetime.now(timezone.utc)


def is_privacy_consent(consent: dict) -> bool:
    """An active Consent about sharing the patient's record (scope patient-privacy)."""
    if consent.get("resourceType") != "Consent" or consent.get("status") != "active":
        return False
    return any(c.get("code") == "patient-privacy" for c in consent.get("scope", {}).get("coding", []))


def decide_consents(consents: list[dict], access: Access, default: str) -> str:
    """PERMIT or DENY for `access` under the patient's Consents and the regional default."""
    opinions = {consent_opinion(c, access) for c in consents if is_privacy_consent(c)}
    if DENY in opinions:
        return DENY
    if PERMIT in opinions:
        return PERMIT
    return default


def consent_opinion(consent: dict, access: Access) -> str | None:
    """What one Consent says about `access`: PERMIT, DENY, or None when it does not apply."""
    provision = consent.get("provision")
    if not provision:
        rules = {c.get("code") for c in consent.get("policyRule", {}).get("coding", [])}
        return PERMIT if "OPTIN" in rules else DENY if "OPTOUT" in rules else None
    return _provision_opinion(provision, access)


def _provision_opinion(provision: dict, access: Access) -> str | None:
    if not _applies(provision, access):
        return None
    for nested in provision.get("provision", []):
        opinion = _provision_opinion(nested, access)
        if opinion:
            return opinion
    return provision.get("type")


def _applies(provision: dict, access: Access) -> bool:
    return (_actor_matches(provision, access) and _in_period(provision.get("period"), access.at())
            and _class_matches(provision, access) and _label_matches(provision, access)
            and _action_matches(provision))


def _ref_key(reference: str | None) -> str | None:
    """`Type/id` of a relative or absolute reference."""
    if not reference:
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def _actor_matches(provision: dict, access: Access) -> bool:
    actors = provision.get("actor")
    if not actors:
        return True
    return any(_ref_key(a.get("reference", {}).get("reference")) in access.actors for a in actors)


def _in_period(period: dict | None, now: datetime) -> bool:
    if not period:
        return True
    start, end = _instant(period.get("start")), _instant(period.get("end"), upper=True)
    return (start is None or start <= now) and (end is None or now <= end)


def _instant(value: str | None, *, upper: bool = False) -> datetime | None:
    if not value:
        return None
    if len(value) == 4:
        value += "-12-31" if upper else "-01-01"
    elif len(value) == 7:
        value += "-28" if upper else "-01"
    if len(value) == 10:
        value += "T23:59:59+00:00" if upper else "T00:00:00+00:00"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _class_matches(provision: dict, access: Access) -> bool:
    classes = provision.get("class")
    if not classes:
        return True
    return any(c.get("code") == access.resource_type and c.get("system", RESOURCE_TYPES) == RESOURCE_TYPES
               for c in classes)


def _label_matches(provision: dict, access: Access) -> bool:
    labels = provision.get("securityLabel")
    if not labels:
        return True
    return any((label.get("system"), label.get("code")) in access.labels for label in labels)


def _action_matches(provision: dict) -> bool:
    actions = {c.get("code") for a in provision.get("action", []) for c in a.get("coding", [])}
    return not actions or bool(actions & READ_ACTIONS)


def mentioned_labels(consents: list[dict]) -> set[tuple[str, str]]:
    """Every security label any provision of these Consents names."""
    found = set()

    def walk(provision: dict) -> None:
        for label in provision.get("securityLabel", []):
            found.add((label.get("system"), label.get("code")))
        for nested in provision.get("provision", []):
            walk(nested)

    for consent in consents:
        if consent.get("provision"):
            walk(consent["provision"])
    return found


def patient_data_types() -> list[str]:
    """The resource types that hold a patient's data: the Patient compartment's members."""
    return sorted(set(compartments()["Patient"]) | {"Patient"})


@dataclass(frozen=True)
class Classes:
    """The data classes of one patient an actor may see: `types` (None: all) minus `excluded_labels`."""

    types: frozenset[str] | None
    excluded_labels: frozenset[tuple[str, str]] = frozenset()

    @property
    def nothing(self) -> bool:
        return self.types is not None and not self.types


def permitted_classes(consents: list[dict], actors: frozenset[str], default: str,
                      now: datetime | None = None) -> Classes:
    """What `actors` may see of a patient under these Consents, as data classes for search.

    Conservative where a label decides: a label denied for any permitted type is excluded for all
    of them, so a search never shows what a direct read would refuse.
    """
    relevant = [c for c in consents if is_privacy_consent(c)]
    if not relevant:
        return Classes(None if default == PERMIT else frozenset())
    types = [t for t in patient_data_types()
             if decide_consents(relevant, Access(actors, t, now=now), default) == PERMIT]
    excluded = frozenset(label for label in mentioned_labels(relevant)
                         if any(decide_consents(relevant, Access(actors, t, frozenset({label}), now), default) == DENY
                                for t in types))
    every = len(types) == len(patient_data_types())
    return Classes(None if every else frozenset(types), excluded)
