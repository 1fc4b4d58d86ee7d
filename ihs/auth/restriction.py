"""Which resources a principal may see, as plain data a search compiler can AND into its query.

A `Restriction` is the policy's answer for searches (and for _include, _revinclude, history,
$everything and export). A resource R of type T is visible when all of these hold:

1. `everything`, or the rest of this list;
2. `types` is None or T is in `types`;
3. R carries none of `excluded_labels` in meta.security;
4. if T has `criteria`, R matches one of its alternatives (each an AND of search parameters);
5. if `within_patients` is set and T is not in `open_types`, R is in the Patient compartment of one of them;
6. and one of:
   - T is in `open_types` (directory and terminology resources);
   - R carries one of `tags` in meta.tag (authorship by an organization, notifiable-disease reports);
   - R is in no patient's compartment and `unattached` is true;
   - R is in the compartment of a patient of some `PatientGrant` whose `types` (None: all) include T
     and R carries none of the grant's `excluded_labels`.

"In the compartment of Patient P": the Patient resource P itself, or a resource whose index has a
reference to Patient P under one of the compartment's parameters for its type
(`ihs.fhir.definitions.compartments()["Patient"][T]`). `visible()` below is the reference
implementation of these rules, for one resource; docs/security.md sketches the SQL of each.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ihs.fhir.definitions import compartments

# stamped in meta.tag by the API on create: the institution whose staff or system wrote the resource
AUTHOR_SYSTEM = "https://ihs.example.org/fhir/CodeSystem/authoring-organization"
# meta.tag of a notifiable-disease report (visible to CDC officers)
REPORT_SYSTEM = "https://ihs.example.org/fhir/CodeSystem/report-category"
NOTIFIABLE = (REPORT_SYSTEM, "notifiable-disease")

Criteria = tuple[tuple[str, str], ...]


def author_tag(organization: str) -> tuple[str, str]:
    """The meta.tag (system, code) saying `Organization/<id>` authored a resource."""
    return AUTHOR_SYSTEM, organization


@dataclass(frozen=True)
class PatientGrant:
    """Resources in the compartment of any of `patients`, limited to `types` and without `excluded_labels`."""

    patients: frozenset[str]  # Patient ids
    types: frozenset[str] | None = None
    excluded_labels: frozenset[tuple[str, str]] = frozenset()
    why: str = ""  # "own record", "proxy", "treatment relationship", "break-glass", ...


@dataclass(frozen=True)
class Restriction:
    everything: bool = False
    types: frozenset[str] | None = None
    open_types: frozenset[str] = frozenset()
    tags: frozenset[tuple[str, str]] = frozenset()
    unattached: bool = False
    grants: tuple[PatientGrant, ...] = ()
    excluded_labels: frozenset[tuple[str, str]] = frozenset()
    criteria: dict[str, tuple[Criteria, ...]] = field(default_factory=dict)
    within_patients: frozenset[str] | None = None

    @property
    def nothing(self) -> bool:
        """True when no resource at all can be visible."""
        return self.types is not None and not self.types

    def patient_ids(self) -> frozenset[str]:
        """Every patient some grant names."""
        return frozenset().union(*(g.patients for g in self.grants)) if self.grants else frozenset()

    def for_type(self, resource_type: str) -> "Restriction":
        """The same restriction, keeping only the parts that concern `resource_type`."""
        grants = tuple(g for g in self.grants if g.types is None or resource_type in g.types)
        criteria = {resource_type: self.criteria[resource_type]} if resource_type in self.criteria else {}
        return replace(self, grants=grants, criteria=criteria)


NOTHING = Restriction(types=frozenset())
EVERYTHING = Restriction(everything=True)


def patients_of(resource: dict, index_rows=None) -> frozenset[str]:
    """Ids of the patients in whose compartment `resource` is (its own id for a Patient)."""
    res_type = resource.get("resourceType")
    params = compartments()["Patient"].get(res_type)
    found = set()
    if res_type == "Patient" and resource.get("id"):
        found.add(resource["id"])
    if not params:
        return frozenset(found)
    if index_rows is None:
        index_rows = _compartment_rows(resource, params)
    for param, target_type, target_id, _url in index_rows.reference:
        if target_type == "Patient" and target_id and param in params:
            found.add(target_id)
    return frozenset(found)


def _compartment_rows(resource: dict, params) -> "IndexRows":
    """The index rows of the compartment parameters alone: every read asks, a full extraction costs ten times more."""
    from ihs.fhir.index_rows import IndexRows

    rows = IndexRows()
    for key, unit, fast in _compartment_units(resource["resourceType"], params):
        if key is None or key in resource:
            try:
                unit(resource, rows)
            except (AttributeError, TypeError, ValueError, KeyError):
                continue  # a value of an unexpected shape names no patient (as in `extract`)
            except Exception:  # fhirpathpy raises bare Exceptions for what it cannot evaluate
                if fast:
                    raise
    return rows


def _compartment_units(res_type: str, params) -> list:
    """(root key, unit, fast) of the compartment parameters' extractors of a type, worked out once."""
    from ihs.fhir.indexing import extractors
    from ihs.fhir.searchparams import registry

    return registry().derived(("compartment units", res_type), lambda: [
        (root, unit, e.fast) for e in extractors(res_type) if e.param.code in params for root, unit in e.units])


def codings(resource: dict, element: str) -> frozenset[tuple[str, str]]:
    """(system, code) of meta.security or meta.tag."""
    meta = resource.get("meta") or {}
    return frozenset((c.get("system"), c.get("code")) for c in meta.get(element, []) if isinstance(c, dict))


def visible(restriction: Restriction, resource: dict, *, matches=None) -> bool:
    """Whether `resource` is visible under `restriction` (the rules of this module's docstring).

    `matches(resource, criteria)` decides rule 4 (default: `ihs.auth.scopes.resource_matches`,
    token/reference/string/uri parameters evaluated on the resource alone).
    """
    res_type = resource.get("resourceType")
    if restriction.types is not None and res_type not in restriction.types:
        return False
    alternatives = restriction.criteria.get(res_type)
    if alternatives:
        if matches is None:
            from ihs.auth.scopes import resource_matches as matches
        if not any(matches(resource, criteria) for criteria in alternatives):
            return False
    if restriction.everything:
        return True
    labels = codings(resource, "security")
    if labels & restriction.excluded_labels:
        return False
    patients = patients_of(resource)
    if restriction.within_patients is not None and res_type not in restriction.open_types \
            and not patients & restriction.within_patients:
        return False
    if res_type in restriction.open_types or codings(resource, "tag") & restriction.tags:
        return True
    if not patients:
        return restriction.unattached
    return any(patients & grant.patients and (grant.types is None or res_type in grant.types)
               and not labels & grant.excluded_labels for grant in restriction.grants)


def stored_matcher(uow):
    """A `matches` for `visible()` that asks the search engine, so chained criteria work too."""
    from ihs.store.search import find

    def matches(resource: dict, criteria: Criteria) -> bool:
        return bool(find(uow, resource["resourceType"], [("_id", resource["id"]), *criteria], limit=1))

    return matches
