"""FHIR Bulk Data export (IG 2.0): the resources of a system, of all patients or of a Group, as NDJSON.

`export(store, request, directory)` writes one `<Type>.ndjson` file per resource type with
resources and returns the files; the API runs it on a background thread (ihs/analytics/jobs.py)
and `ihs export` runs it with a progress bar. Each type is read in `_lastUpdated` order up to the
export's transactionTime, so resources changed during the export wait for the next `_since` export.
Patient and Group exports keep the resources of the Patient compartment types that belong to the
patients (ihs/analytics/compartment.py); `_typeFilter` queries (OR-ed per type) run as searches.

With `_since`, as the Bulk Data IG 2.0 allows:
- a Group export also carries every resource, however old, of the patients who joined the Group
  after `_since` (members of the Group's current version but not of its version at `_since`), so
  a client that syncs a cohort receives the whole record of each newcomer;
- the resources deleted after `_since` (and still deleted at the transactionTime) that the export
  would have carried are listed in `<Type>.deleted.ndjson` files: transaction Bundles of DELETE
  requests. Whether a deletion belongs to the export is judged on the resource's last version
  (its type, its patients and the access policy's narrowing); `_typeFilter` is not applied to
  deletions, since deleting a resource a client never received costs it nothing.

The export obeys the access policy like a search by its caller: each type is read under
`policy.search_restriction(caller, type, interaction="export")` (ihs/auth/restriction.py), ANDed
into the export's SQL, so a patient exports their own and their proxies' records, a practitioner
the records of the patients they treat (with consent) and their institution's. A Group export
keeps the members whose Patient resource the caller may see, and fails as "not known" for a Group
it may not see; a deletion is listed only when the policy shows the deleted resource's last version.
The caller travels in the request as its claims (`caller_claims`), so a worker resuming a job
decides with the policy as it stands then; a request without a caller (the CLI) exports everything.
For a caller, the result names the patients whose records the files carry (`ExportResult.patients`,
ihs/analytics/export_patients.py) and those the policy showed only by an open break-the-glass
grant, for the job's AuditEvents (ihs/analytics/export_audit.py).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import Callable

import orjson

from ihs.analytics.compartment import active_members, group_patients, patient_compartment_types, patients_of
from ihs.analytics.deidentify import Deidentifier
from ihs.analytics.export_patients import ExportedPatients
from ihs.analytics.source import filtered_resources, type_filter_queries
from ihs.auth import policy
from ihs.auth.principal import Principal
from ihs.auth.restriction import Restriction, visible
from ihs.auth.scopes import parse_scopes, resource_matches
from ihs.fhir.definitions import compartments
from ihs.fhir.errors import FhirError, NotFound
from ihs.fhir.searchparams import registry
from ihs.store.store import Store, instant

NDJSON_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
LEVELS = ("system", "patient", "group")
DELETIONS_PER_BUNDLE = 500
MEMBERS_PER_QUERY = 100  # newcomers' ids OR-ed in one search parameter
HISTORY_PAGE = 1000


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
    # the claims of the caller whose access policy decides what is exported (None: a trusted caller)
    caller: dict | None = None

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


def caller_claims(principal: Principal) -> dict:
    """What the policy needs to know of `principal`, as JSON for the job's row.

    A break-the-glass claim is left out: it opens the patients a search names, and an export names
    none; emergency access already granted (and still unexpired when the job runs) applies anyway."""
    return {"subject": principal.subject, "roles": sorted(principal.roles), "scopes": principal.scopes.text,
            "client_id": principal.client_id, "fhir_user": principal.fhir_user,
            "organizations": list(principal.organizations), "patient": principal.patient}


def caller_of(claims: dict) -> Principal:
    """The principal `caller_claims` describes."""
    return Principal(subject=claims["subject"], roles=frozenset(claims["roles"]), scopes=parse_scopes(claims["scopes"]),
                     client_id=claims.get("client_id"), fhir_user=claims.get("fhir_user"),
                     organizations=tuple(claims.get("organizations") or ()), patient=claims.get("patient"))


@dataclass
class ExportFile:
    type: str
    path: Path
    count: int


@dataclass
class ExportResult:
    transaction_time: int  # microseconds since the epoch
    files: list[ExportFile]
    deleted: list[ExportFile] = field(default_factory=list)  # Bundles of DELETE requests (with _since)
    patients: set[str] = field(default_factory=set)  # whose records the files carry (for a caller only)
    break_glass: set[str] = field(default_factory=set)  # of those, shown only by break-the-glass grants


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
    restrictions = _restrictions(store, request, _types(request))
    types = [t for t in _types(request) if not (restrictions.get(t) and restrictions[t].nothing)]
    filters = type_filter_queries(request.type_filters)
    belongs, newcomers = _membership(store, request, restrictions)
    carried = ExportedPatients({t: policy.break_glass_patients(r, t) for t, r in restrictions.items()}) \
        if request.caller is not None else None
    files, written = [], 0
    for done, res_type in enumerate(types):
        if progress:
            progress(res_type, done, len(types), written)
        queries = _queries(request, res_type, filters.get(res_type))
        if queries == []:
            continue
        restriction = restrictions.get(res_type)
        sources = [filtered_resources(store, res_type, queries, since=request.since, until=transaction_time,
                                      restriction=restriction)]
        older = _newcomer_queries(res_type, newcomers, queries)
        if older:  # the newcomers' resources from before _since; the later ones are in the first source
            sources.append(filtered_resources(store, res_type, older, until=request.since - 1,
                                              restriction=restriction))
        path = directory / f"{res_type}.ndjson"
        count = 0
        with open(path, "w", encoding="utf-8") as out:
            for stored in chain(*sources):
                if cancelled():
                    raise Cancelled()
                if belongs is not None and not belongs(stored):
                    continue
                if carried is not None:
                    carried.add(stored)
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
    deleted = []
    if request.since is not None:
        for res_type in types:
            if progress:
                progress(f"{res_type} deletions", len(types), len(types), written)
            found = _deletions(store, request, res_type, belongs, restrictions.get(res_type), transaction_time,
                               deidentifier, directory, cancelled)
            if found:
                deleted.append(found)
    if progress:
        progress("", len(types), len(types), written)
    if carried is None:
        return ExportResult(transaction_time, files, deleted)
    return ExportResult(transaction_time, files, deleted, carried.patients, carried.break_glass)


def _deletions(store: Store, request: ExportRequest, res_type: str, belongs: Callable | None,
               restriction: Restriction | None, until: int, deidentifier: Deidentifier | None, directory: Path, cancelled: Callable[[], bool]) -> ExportFile | None:
    """`<Type>.deleted.ndjson`: Bundles of DELETE requests for the export's resources deleted since _since."""
    scoped = request.allowed.get(res_type) if request.allowed is not None else None
    seen, deletions, offset = set(), [], 0
    with store.session() as uow:
        while True:  # versions newest first: the first one seen of a resource is its state at `until`
            versions, total = uow.history(res_type, since=request.since, at=until, count=HISTORY_PAGE, offset=offset)
            for version in versions:
                if version.id not in seen:
                    seen.add(version.id)
                    if version.deleted and version.version > 1:
                        deletions.append((version.id, version.version))
            offset += len(versions)
            if not versions or offset >= total:
                break
        gone = []
        for res_id, deleted_version in deletions:
            if cancelled():
                raise Cancelled()
            last = uow.version(res_type, res_id, deleted_version - 1)
            if last is None or last.deleted or (belongs is not None and not belongs(last)):
                continue
            if scoped is not None and not any(resource_matches(last.resource(), tuple(q)) for q in scoped):
                continue
            if restriction is not None and not visible(restriction, last.resource()):
                continue  # a deleted resource has no index rows: the policy is asked of its last version
            gone.append(res_id if deidentifier is None else deidentifier.pseudonym(res_type, res_id))
    if not gone:
        return None
    path = directory / f"{res_type}.deleted.ndjson"
    bundles = 0
    with open(path, "w", encoding="utf-8") as out:
        for start in range(0, len(gone), DELETIONS_PER_BUNDLE):
            bundle = {"resourceType": "Bundle", "id": uuid.uuid4().hex, "meta": {"lastUpdated": instant(until)},
                      "type": "transaction",
                      "entry": [{"request": {"method": "DELETE", "url": f"{res_type}/{res_id}"}}
                                for res_id in sorted(gone[start:start + DELETIONS_PER_BUNDLE])]}
            out.write(orjson.dumps(bundle).decode())
            out.write("\n")
            bundles += 1
    return ExportFile("Bundle", path, bundles)


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


def _restrictions(store: Store, request: ExportRequest, types: list[str]) -> dict[str, Restriction]:
    """Per type, what the caller's access policy lets the export show; a type absent shows everything
    (no caller, or a caller the policy trusts with all of it: no condition, no cost)."""
    if request.caller is None:
        return {}
    caller = caller_of(request.caller)
    found = {}
    with store.session() as uow:
        for res_type in dict.fromkeys(types + (["Group"] if request.level == "group" else [])):
            restriction = policy.search_restriction(caller, res_type, uow, interaction="export")
            if not (restriction.everything and restriction.types is None and not restriction.criteria):
                found[res_type] = restriction
    return found


def _membership(store: Store, request: ExportRequest,
                restrictions: dict[str, Restriction]) -> tuple[Callable | None, set[str]]:
    """The test a resource passes to be exported (None: all, at system level), and the patients who
    joined the Group after _since (their resources are exported whatever their age)."""
    if request.level == "system":
        return None, set()
    if request.level == "patient":
        return (lambda stored: stored.type == "Patient" or bool(patients_of(stored.resource()))), set()
    with store.session() as uow:
        group = uow.current("Group", request.group_id)
        shown = restrictions.get("Group")
        if group is not None and not group.deleted and shown is not None and not visible(shown, group.resource()):
            raise NotFound(f"Group/{request.group_id} is not known")  # its existence is not revealed either
        members = _visible_patients(uow, group_patients(uow, request.group_id), restrictions.get("Patient"))
        newcomers = set()
        if request.since is not None:
            before, _ = uow.history("Group", request.group_id, at=request.since - 1, count=1)
            earlier = active_members(before[0].resource()) if before and not before[0].deleted else set()
            newcomers = members - earlier

    def belongs(stored) -> bool:
        if stored.type == "Patient":
            return stored.id in members
        return bool(patients_of(stored.resource()) & members)
    return belongs, newcomers


def _visible_patients(uow, ids: set[str], restriction: Restriction | None) -> set[str]:
    """The Patients of `ids` whose record the restriction shows (all of them under None).

    A directory lookup of patients (Patient among the open types, for staff) is not enough: a member
    counts when the caller may see their record (own, proxy, treatment relationship, institution)."""
    if restriction is None or not ids:
        return ids
    from ihs.store.search.visibility import visible_rids

    restriction = replace(restriction, open_types=restriction.open_types - {"Patient"})

    rids = {}
    for patient_id in ids:
        stored = uow.current("Patient", patient_id)
        if stored is not None and not stored.deleted:
            rids[stored.rid] = patient_id
    shown = visible_rids(uow, restriction, {"Patient": list(rids)}) if rids else set()
    return {rids[rid] for rid in shown}


def _newcomer_queries(res_type: str, newcomers: set[str], queries: list | None) -> list:
    """Searches for `res_type` resources in the newcomers' compartments, AND-ed with the export's queries."""
    if not newcomers:
        return []
    params = ["_id"] if res_type == "Patient" else \
        [p for p in compartments()["Patient"].get(res_type, ()) if p != "{def}"]
    ids = sorted(newcomers)
    chunks = [ids[i:i + MEMBERS_PER_QUERY] for i in range(0, len(ids), MEMBERS_PER_QUERY)]
    members = [[(param, ",".join(chunk if param == "_id" else [f"Patient/{i}" for i in chunk]))]
               for param in params for chunk in chunks]
    return [m + list(q) for m in members for q in (queries or [[]])]
