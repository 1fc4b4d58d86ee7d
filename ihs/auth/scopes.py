"""SMART on FHIR scopes, v1 and v2 (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

A clinical scope names a context (patient | user | system), a resource type (or *) and what it
permits: v1 `read`/`write`/`*`, v2 any in-order subset of `cruds` (create, read, update, delete,
search), optionally narrowed by a query: `patient/Observation.rs?category=vital-signs` permits only
Observations in that category. Other scopes are launch context and identity requests:
`launch`, `launch/patient`, `openid`, `fhirUser`, `profile`, `offline_access`, `online_access`.

A scope only narrows: it never grants what the access policy (ihs/auth/policy.py) denies.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ihs.fhir.errors import FhirError

CONTEXTS = ("patient", "user", "system")
IDENTITY_SCOPES = frozenset({"launch", "launch/patient", "launch/encounter", "openid", "fhirUser", "profile",
                             "offline_access", "online_access"})
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}

# the permission letter each interaction needs (SMART v2: read covers vread and instance history)
INTERACTION_PERMISSION = {
    "create": "c",
    "read": "r", "vread": "r", "history-instance": "r",
    "update": "u", "patch": "u",
    "delete": "d",
    "search": "s", "search-type": "s", "search-system": "s", "search-compartment": "s",
    "history-type": "s", "history-system": "s", "export": "s",
}

_CLINICAL = re.compile(r"(patient|user|system)/([A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)(?:\?(.*))?")


@dataclass(frozen=True)
class Scope:
    """One clinical scope: `context/type.permissions[?query]`; `query` is a tuple of (param, value)."""

    context: str
    resource_type: str  # a type or "*"
    permissions: frozenset[str]
    query: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def covers_type(self, resource_type: str | None) -> bool:
        return self.resource_type == "*" or self.resource_type == resource_type

    def allows(self, letter: str, resource_type: str | None) -> bool:
        return letter in self.permissions and self.covers_type(resource_type)

    def within(self, other: "Scope") -> bool:
        """Whether this scope asks for no more than `other` grants (for granting requested scopes)."""
        return (self.context == other.context and other.covers_type(self.resource_type)
                and (other.resource_type == "*" or self.resource_type != "*")
                and self.permissions <= other.permissions
                and (not other.query or set(other.query) <= set(self.query)))


@dataclass(frozen=True)
class Scopes:
    """A parsed scope string: clinical scopes plus the identity/launch scopes."""

    clinical: tuple[Scope, ...]
    other: frozenset[str]

    @property
    def text(self) -> str:
        return " ".join([s.text for s in self.clinical] + sorted(self.other))

    def has(self, name: str) -> bool:
        return name in self.other

    def contexts(self) -> set[str]:
        return {s.context for s in self.clinical}


def parse_scope(text: str) -> Scope | None:
    """One clinical scope, or None for a launch/identity scope; FhirError for a malformed one."""
    if text in IDENTITY_SCOPES:
        return None
    match = _CLINICAL.fullmatch(text)
    if not match or not match.group(3):
        raise FhirError(f"'{text}' is not a SMART scope (e.g. patient/Observation.rs or user/*.read)",
                        code="security")
    context, resource_type, permissions, query = match.groups()
    letters = V1_PERMISSIONS.get(permissions, permissions)
    narrowed = tuple(parse_qsl(query, keep_blank_values=True)) if query else ()
    if query is not None and not narrowed:
        raise FhirError(f"scope '{text}' has an empty query", code="security")
    return Scope(context, resource_type, frozenset(letters), narrowed, text)


def parse_scopes(text: str | None) -> Scopes:
    """Parse a space-separated scope string (unknown scopes raise FhirError)."""
    clinical, other = [], set()
    for item in (text or "").split():
        scope = parse_scope(item)
        if scope is None:
            other.add(item)
        else:
            clinical.append(scope)
    return Scopes(tuple(clinical), frozenset(other))


def permission_of(interaction: str) -> str:
    """The letter (c r u d s) an interaction needs; operations name theirs (see policy.OPERATIONS)."""
    try:
        return INTERACTION_PERMISSION[interaction]
    except KeyError:
        raise ValueError(f"unknown interaction {interaction!r}") from None


def granting(scopes: Scopes | tuple[Scope, ...], interaction: str, resource_type: str | None) -> list[Scope]:
    """The clinical scopes that permit `interaction` on `resource_type` (before any query narrowing)."""
    clinical = scopes.clinical if isinstance(scopes, Scopes) else scopes
    letter = permission_of(interaction)
    return [s for s in clinical if s.allows(letter, resource_type)]


def scope_permits(scopes: Scopes | tuple[Scope, ...], interaction: str, resource_type: str | None,
                  resource: dict | None = None) -> bool:
    """Whether some scope permits `interaction` on `resource_type`.

    With `resource`, a query-narrowed scope permits only a resource matching its query. Without it
    (a search, or a check before loading), a narrowed scope counts as permitting: the narrowing is
    then applied as search criteria (`scope_criteria`).
    """
    for scope in granting(scopes, interaction, resource_type):
        if not scope.query or resource is None or resource_matches(resource, scope.query):
            return True
    return False


def scope_criteria(scopes: Scopes | tuple[Scope, ...], interaction: str,
                   resource_type: str) -> list[tuple[tuple[str, str], ...]] | None:
    """The narrowing to apply to a search: None when some scope grants the type unnarrowed, else the
    alternatives (OR) of criteria lists (each an AND of search parameters, e.g. (("category", "vital-signs"),)).
    An empty list means no scope grants the search at all."""
    found = granting(scopes, interaction, resource_type)
    if any(not s.query for s in found):
        return None
    return list(dict.fromkeys(s.query for s in found))


def resource_matches(resource: dict, query: tuple[tuple[str, str], ...]) -> bool:
    """Whether `resource` meets every (param, value) of a scope's query (token, reference, string,
    uri and _id parameters; a comma means OR). Evaluated on the resource's own index rows."""
    from ihs.fhir.indexing import extract

    rows = extract(resource)
    return all(any(_value_matches(rows, resource, param, v) for v in value.split(",")) for param, value in query)


def _value_matches(rows, resource: dict, param: str, value: str) -> bool:
    name, _, modifier = param.partition(":")
    if name == "_id":
        return resource.get("id") == value
    if modifier in ("", "exact", "code"):
        system, bar, code = value.rpartition("|")
        for p, sys_, c, _text in rows.token:
            if p == name and c == code and (not bar or (sys_ or "") == system):
                return True
    for p, target_type, target_id, url in rows.reference:
        if p == name and (value == url or value == f"{target_type}/{target_id}" or value == target_id):
            return True
    for p, normalized, exact in rows.string:
        if p == name and (exact == value if modifier == "exact" else normalized.startswith(value.lower())):
            return True
    return any(p == name and uri == value for p, uri in rows.uri)
