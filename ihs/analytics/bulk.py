"""FHIR Bulk Data export (IG 2.0): the resources of a system, of all patients or of a Group, as NDJSON.

`export(store, request, directory)` writes one `<Type>.ndjson` file per resource type with
resources and returns the files; the API runs it on a background thread (ihs/analytics/jobs.py)
and `ihs export` runs it with a progress bar. Each type is read in `_lastUpdated` order up to the
export's transactionTime, so resources changed during the export wait for the next `_since` export.
Patient and Group exports keep the resources of the Patient compartment types that belong to the
patients (ihs/analytics/compartment.py); `_typeFilter` queries (OR-ed per type) run as searches.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson

from ihs.analytics.compartment import group_patients, patient_compartment_types, patients_of
from ihs.analytics.deidentify import Deidentifier
from ihs.analytics.source import filtered_resources, type_filter_queries
from ihs.fhir.errors import FhirError
from ihs.fhir.searchparams import registry
from ihs.store.store import Store

NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
LEVELS = ("system", "patient", "group")


class Cancelled(Exception):
    """The export was cancelled (DELETE on its status URL) while it ran."""


@dataclass
class ExportRequest:
    """What to export: the level, the types, `_since` (microseconds) and `_typeFilter` queries."""

    level: str = "system"
    group_id: str | None = None
    types: list[str] | None = None
    since: int | None = None
    type_filters: list[str] = field(default_factory=list)
    output_format: str = "application/fhir+ndjson"
    deidentify: bool = False  # pseudonyms, shifted dates, no free text (ihs/analytics/deidentify.py)
    # per type, search criteria an access policy adds (OR-ed); a type absent from it is not exported
    allowed: dict[str, list[list[tuple[str, str]]] | None] | None = None

    def check(self) -> None:
        """Reject what cannot be exported with an OperationOutcome naming the parameter."""
        if self.level not in LEVELS:
            raise FhirError(f"unknown export level {self.level!r}")
        if self.output_format not in NDJSON_FORMATS:
            raise FhirError(f"_outputFormat '{self.output_format}' is not supported; use application/fhir+ndjson",
                            expression="_outputFormat")
        known = set(registry().resource_types())
        unknown = [t for t in (self.types or []) if t not in known]
        unknown += [t for t in type_filter_queries(self.type_filters) if t not in known]
        if unknown:
            raise FhirError(f"{', '.join(unknown)} is not a resource type", expression="_type")
        if self.level != "system" and self.types:
            outside = sorted(set(self.types) - set(patient_compartment_types()))
            if outside:
                raise FhirError(f"{', '.join(outside)} resources are never in a Patient compartment; "
                                "export them at system level", expression="_type")


@dataclass
class ExportFile:
    type: str
    path: Path
    count: int


@dataclass
class ExportResult:
    transaction_time: int  # microseconds since the epoch
    files: list[ExportFile]


Progress = Callable[[str, int, int, int], None]  # (current type, types done, types in all, resources written)


def export(store: Store, request: ExportRequest, directory: Path, *, progress: Progress | None = None,
           cancelled: Callable[[], bool] = lambda: False, key: bytes | None = None) -> ExportResult:
    """Write the export's NDJSON files into `directory`; Cancelled when `cancelled()` turns true.

    A de-identified export needs the pseudonym `key`."""
    request.check()
    if request.deidentify and not key:
        raise ValueError("a de-identified export needs the pseudonym key")
    deidentifier = Deidentifier(key) if request.deidentify else None
    directory.mkdir(parents=True, exist_ok=True)
    transaction_time = time.time_ns() // 1000
    types = _types(request)
    filters = type_filter_queries(request.type_filters)
    belongs = _membership(store, request)
    files, written = [], 0
    for done, res_type in enumerate(types):
        if progress:
            progress(res_type, done, len(types), written)
        queries = _queries(request, res_type, filters.get(res_type))
        if queries == []:
            continue
        path = directory / f"{res_type}.ndjson"
        count = 0
        with open(path, "w", encoding="utf-8") as out:
            for stored in filtered_resources(store, res_type, queries, since=request.since, until=transaction_time):
                if cancelled():
                    raise Cancelled()
                if belongs is not None and not belongs(stored):
                    continue
                out.write(stored.content if deidentifier is None else
                          orjson.dumps(deidentifier.resource(stored.resource())).decode())
                out.write("\n")
                count += 1
                written += 1
                if progress and written % 1000 == 0:
                    progress(res_type, done, len(types), written)
        if count:
            files.append(ExportFile(res_type, path, count))
        else:
            path.unlink()
    if progress:
        progress("", len(types), len(types), written)
    return ExportResult(transaction_time, files)


def _types(request: ExportRequest) -> list[str]:
    if request.types:
        types = list(dict.fromkeys(request.types))
    elif request.level == "system":
        types = sorted(registry().resource_types())
    else:
        types = patient_compartment_types()
    if request.allowed is not None:
        types = [t for t in types if t in request.allowed]
    return types


def _queries(request: ExportRequest, res_type: str, filters: list | None) -> list | None:
    """The OR-ed search queries for one type: the client's _typeFilter AND the policy's narrowing."""
    policy = request.allowed.get(res_type) if request.allowed is not None else None
    if policy is None:
        return filters
    if not filters:
        return [list(q) for q in policy]
    return [list(f) + list(q) for f in filters for q in policy]


def _membership(store: Store, request: ExportRequest) -> Callable | None:
    """The test a resource passes to be exported: None (all) at system level, else compartment membership."""
    if request.level == "system":
        return None
    if request.level == "patient":
        return lambda stored: stored.type == "Patient" or bool(patients_of(stored.resource()))
    with store.session() as uow:
        members = group_patients(uow, request.group_id)
    return lambda stored: stored.id in members if stored.type == "Patient" else \
        bool(patients_of(stored.resource()) & members)
