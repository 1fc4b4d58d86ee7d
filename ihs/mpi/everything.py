"""Patient/[id]/$everything across institutions: the records of every source Patient of one person.

The person is the golden record (asked directly, or reached from a source record's `refer` link)
and every source record linking to it; each one's Patient compartment (the R4 CompartmentDefinition)
is read through search and the union answered once per resource. `_type` narrows the types and
`_since` keeps resources changed since an instant.
"""
from __future__ import annotations

from ihs.fhir.definitions import compartments
from ihs.fhir.errors import FhirError, NotFound, Gone
from ihs.mpi.features import is_golden
from ihs.mpi.index import golden_id_of
from ihs.store import search
from ihs.store.store import StoredResource, UnitOfWork

MAX_RESOURCES = 10_000
PAGE = 1000


def linked_patients(uow: UnitOfWork, patient_id: str) -> list[str]:
    """The ids of the person's Patients: the golden record first, then its sources (or just the one record)."""
    stored = uow.current("Patient", patient_id)
    if stored is None:
        raise NotFound(f"Patient/{patient_id} does not exist")
    if stored.deleted:
        raise Gone(f"Patient/{patient_id} was deleted")
    patient = stored.resource()
    golden = patient_id if is_golden(patient) else golden_id_of(patient)
    if golden is None:
        return [patient_id]
    sources = search.find(uow, "Patient", [("link", f"Patient/{golden}")], limit=1000)
    ids = [golden] + sorted(s.id for s in sources if not is_golden(s.resource()))
    return list(dict.fromkeys(ids + [patient_id]))


def _types(wanted: str | None) -> list[str]:
    definition = compartments()["Patient"]
    if not wanted:
        # The patient's record, not the trail of who looked at it (ask for _type=AuditEvent for that).
        return sorted(t for t in definition if t != "AuditEvent")
    types = [t.strip() for t in wanted.split(",") if t.strip()]
    unknown = [t for t in types if t not in definition]
    if unknown:
        raise FhirError(f"_type: {', '.join(unknown)} are never in a Patient compartment", expression="_type")
    return types


def everything(uow: UnitOfWork, patient_id: str, *, types: str | None = None,
               since: str | None = None) -> list[StoredResource]:
    """Every resource in the compartments of the person's Patients, each once."""
    wanted = _types(types)
    query = [("_lastUpdated", f"ge{since}")] if since else []
    found: dict[tuple[str, str], StoredResource] = {}
    people = linked_patients(uow, patient_id)
    for pid in people:
        offset = 0
        while True:
            result = search.search(uow, None, query + [("_count", str(PAGE)), ("_offset", str(offset)),
                                                       ("_total", "none")],
                                   compartment=("Patient", pid), compartment_types=wanted)
            for stored in result.matches:
                found.setdefault((stored.type, stored.id), stored)
            if len(found) > MAX_RESOURCES:
                raise FhirError(f"the record holds more than {MAX_RESOURCES} resources; narrow it with _type or "
                                "_since, or use $export", 422, code="too-costly")
            if not result.has_next:
                break
            offset += PAGE
    patients = [found.pop(("Patient", pid)) for pid in people if ("Patient", pid) in found]
    return patients + [found[key] for key in sorted(found)]
