"""Patient compartments for exports and views: which patients a resource belongs to, and Group members.

Membership follows the R4 Patient CompartmentDefinition (Observation by `subject` and `performer`,
Encounter by `patient`, ...), read through the same compiled search-parameter extractors that
build the search index, so an export and `Patient/123/*` agree on what belongs to a patient.
"""
from __future__ import annotations

from functools import cache

from ihs.fhir.definitions import compartments
from ihs.fhir.errors import FhirError, NotFound
from ihs.fhir.fhirpath_compile import parse_reference
from ihs.fhir.index_rows import IndexRows
from ihs.fhir.indexing import extractors
from ihs.store.store import UnitOfWork


def patient_compartment_types() -> list[str]:
    """Resource types that can be in a Patient compartment (Patient itself included)."""
    return sorted(compartments()["Patient"])


@cache
def _units(res_type: str) -> tuple:
    codes = set(compartments()["Patient"].get(res_type, ())) - {"{def}"}
    return tuple(unit for extractor in extractors(res_type) if extractor.param.code in codes
                 for _, unit in extractor.units)


def patients_of(resource: dict) -> set[str]:
    """Ids of the patients whose compartment holds `resource` (a Patient is in its own)."""
    res_type = resource.get("resourceType")
    found = {resource["id"]} if res_type == "Patient" and resource.get("id") else set()
    units = _units(res_type)
    if not units:
        return found
    rows = IndexRows()
    for unit in units:
        unit(resource, rows)
    found.update(target_id for _, target_type, target_id, _ in rows.reference
                 if target_type == "Patient" and target_id)
    return found


def group_patients(uow: UnitOfWork, group_id: str) -> set[str]:
    """Ids of the Patients a Group lists as active members."""
    stored = uow.current("Group", group_id)
    if stored is None or stored.deleted:
        raise NotFound(f"Group/{group_id} is not known")
    members = active_members(stored.resource())
    if not members and stored.resource().get("member"):
        raise FhirError(f"Group/{group_id} has no active Patient members", 422, code="business-rule")
    return members


def active_members(group: dict) -> set[str]:
    """Ids of the Patients one version of a Group lists as active members."""
    members = set()
    for member in group.get("member", []):
        if member.get("inactive") is True:
            continue
        target_type, target_id = parse_reference(member.get("entity", {}).get("reference", ""))
        if target_type == "Patient":
            members.add(target_id)
    return members
