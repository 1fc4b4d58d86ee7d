"""Patient/$merge (the R5 definition, http://hl7.org/fhir/R5/patient-operation-merge.html) and its undoing.

A merge folds a source Patient into a target: every resource referencing the source is re-pointed
to the target, the source becomes inactive with a `replaced-by` link, the target gains a `replaces`
link (or becomes the `result-patient` given), and a Provenance (activity merge) lists every
version written. With `preview` nothing is written and the answer says what would be. `unmerge`
reads that Provenance and puts back exactly the references the merge moved.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ihs.fhir.errors import BusinessRule, FhirError, Issue, NotFound, operation_outcome
from ihs.fhir.validation import validate
from ihs.mpi.golden import ASSURANCE
from ihs.mpi.references import MAX_REFERRING, get_path, reference_paths, referring, repoint, set_path
from ihs.store import search
from ihs.store.store import StoredResource, UnitOfWork, instant

LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"


@dataclass
class MergeRequest:
    """The operation's input parameters."""

    source: str | None = None  # Patient id
    source_identifiers: list[dict] = field(default_factory=list)
    target: str | None = None
    target_identifiers: list[dict] = field(default_factory=list)
    result_patient: dict | None = None
    preview: bool = False
    parameters: dict = field(default_factory=dict)


def _patient_id(reference: dict | None, where: str) -> str | None:
    if reference is None:
        return None
    text = (reference or {}).get("reference") or ""
    kind, _, res_id = text.split("/_history/")[0].rpartition("/")
    if not kind.endswith("Patient") or not res_id:
        raise FhirError(f"'{text}' is not a reference to a Patient", expression=where)
    return res_id


def parse_request(body) -> MergeRequest:
    """The Parameters of $merge (or $unmerge): source-/target-patient, their identifiers, result-patient, preview."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError("this operation takes a Parameters resource", expression="Parameters")
    request = MergeRequest(parameters=body)
    for i, parameter in enumerate(body.get("parameter") or []):
        name, where = parameter.get("name"), f"Parameters.parameter[{i}]"
        if name == "source-patient":
            request.source = _patient_id(parameter.get("valueReference"), where)
        elif name == "target-patient":
            request.target = _patient_id(parameter.get("valueReference"), where)
        elif name == "source-patient-identifier":
            request.source_identifiers.append(parameter.get("valueIdentifier") or {})
        elif name == "target-patient-identifier":
            request.target_identifiers.append(parameter.get("valueIdentifier") or {})
        elif name == "result-patient":
            request.result_patient = parameter.get("resource")
        elif name == "preview":
            request.preview = parameter.get("valueBoolean") is True
    return request


def _resolve(uow: UnitOfWork, res_id: str | None, identifiers: list[dict], role: str) -> StoredResource:
    if res_id is None and not identifiers:
        raise FhirError(f"give {role}-patient or {role}-patient-identifier", code="required",
                        expression=f"Parameters.parameter.{role}-patient")
    if res_id is None:
        matches = None
        for identifier in identifiers:
            token = f"{identifier.get('system', '')}|{identifier.get('value', '')}"
            found = {s.id: s for s in search.find(uow, "Patient", [("identifier", token)], limit=2)}
            matches = found if matches is None else {k: v for k, v in matches.items() if k in found}
        if not matches or len(matches) > 1:
            raise BusinessRule(f"the {role}-patient-identifier matches {len(matches or {})} Patients, not one",
                               f"Parameters.parameter.{role}-patient-identifier")
        return next(iter(matches.values()))
    stored = uow.current("Patient", res_id)
    if stored is None or stored.deleted:
        raise NotFound(f"Patient/{res_id} ({role}-patient) does not exist")
    return stored


def _links_to(patient: dict, link_type: str, other: str) -> bool:
    return any(l.get("type") == link_type and (l.get("other") or {}).get("reference") == f"Patient/{other}"
               for l in patient.get("link") or [])


@dataclass
class MergeResult:
    parameters: dict
    written: list[StoredResource]


def merge(uow: UnitOfWork, request: MergeRequest, *, agent: dict | None = None) -> MergeResult:
    """Merge the source Patient into the target (or, with preview, say what that would do)."""
    source = _resolve(uow, request.source, request.source_identifiers, "source")
    target = _resolve(uow, request.target, request.target_identifiers, "target")
    if source.id == target.id:
        raise BusinessRule("the source and target patients are the same Patient", "Parameters.parameter")
    source_patient, target_patient = source.resource(), target.resource()
    if _links_to(source_patient, "replaced-by", target.id) or source_patient.get("active") is False and \
            any(l.get("type") == "replaced-by" for l in source_patient.get("link") or []):
        raise BusinessRule(f"Patient/{source.id} has already been merged", "Parameters.parameter.source-patient")
    result = _result_patient(request, target_patient, source.id)
    others = [s for s in referring(uow, source.id) if (s.type, s.id) != ("Patient", target.id)]
    if len(others) >= MAX_REFERRING:
        raise FhirError(f"more than {MAX_REFERRING} resources reference Patient/{source.id}", 422, code="too-costly")
    moved = 0
    changed = []
    for stored in others:
        resource = stored.resource()
        count = repoint(resource, source.id, target.id)
        if resource["resourceType"] == "Patient":
            _mark_manual(resource, target.id)
        if count:
            moved += count
            changed.append((stored, resource))
    retired = copy.deepcopy(source_patient)
    retired["active"] = False
    repoint(retired, source.id, target.id)
    retired["link"] = [l for l in retired.get("link") or [] if l.get("type") != "replaced-by"] + [
        {"other": {"reference": f"Patient/{target.id}"}, "type": "replaced-by"}]
    summary = (f"Patient/{source.id} {'would be' if request.preview else 'was'} merged into Patient/{target.id}; "
               f"{moved} reference(s) in {len(changed)} resource(s) {'would be' if request.preview else 'were'} "
               "re-pointed")
    written = []
    if not request.preview:
        for resource in [result, retired] + [r for _, r in changed]:
            validate(resource)
        current = {(s.type, s.id): s for s, _ in changed}
        written.append(uow.update(result, target))
        written.append(uow.update(retired, source))
        written += [uow.update(resource, current[(resource["resourceType"], resource["id"])])
                    for _, resource in changed]
        written.append(_provenance(uow, "merge", source.id, written, agent))
        result = written[0].resource()
    outcome = operation_outcome([Issue(summary, code="informational", severity="information")])
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "input", "resource": request.parameters},
        {"name": "outcome", "resource": outcome},
        {"name": "result", "resource": result}]}
    return MergeResult(parameters, written)


def _result_patient(request: MergeRequest, target: dict, source_id: str) -> dict:
    if request.result_patient is not None:
        result = copy.deepcopy(request.result_patient)
        if result.get("resourceType") != "Patient" or result.get("id") != target["id"]:
            raise BusinessRule("result-patient must be the target Patient (same id)",
                               "Parameters.parameter.result-patient")
        if not _links_to(result, "replaces", source_id):
            raise BusinessRule(f"result-patient must link to Patient/{source_id} with type replaces",
                               "Parameters.parameter.result-patient")
        return result
    result = copy.deepcopy(target)
    if not _links_to(result, "replaces", source_id):
        result["link"] = (result.get("link") or []) + [{"other": {"reference": f"Patient/{source_id}"},
                                                        "type": "replaces"}]
    return result


def _mark_manual(patient: dict, golden_id: str) -> None:
    """A source record moved by a merge stays with the person a steward chose."""
    for link in patient.get("link") or []:
        if link.get("type") == "refer" and (link.get("other") or {}).get("reference") == f"Patient/{golden_id}":
            link["extension"] = [{"url": ASSURANCE, "valueCode": "manual"}]


def _provenance(uow: UnitOfWork, activity: str, source_id: str, written: list[StoredResource],
                agent: dict | None) -> StoredResource:
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": f"{s.type}/{s.id}/_history/{s.version}"} for s in written],
        "recorded": instant(uow.store.clock.now()),
        "activity": {"coding": [{"system": LIFECYCLE, "code": activity, "display": activity.capitalize()}]},
        "agent": [{"who": agent or {"display": "IHS master patient index"}}],
        "entity": [{"role": "removal" if activity == "merge" else "revision",
                    "what": {"reference": f"Patient/{source_id}"}}],
    }
    validate(provenance)
    return uow.create(provenance)


def unmerge(uow: UnitOfWork, request: MergeRequest, *, agent: dict | None = None) -> MergeResult:
    """Undo the latest merge of the source into the target: restore the source and move back its references."""
    source = _resolve(uow, request.source, request.source_identifiers, "source")
    target = _resolve(uow, request.target, request.target_identifiers, "target")
    merge_record = _latest_merge(uow, source.id, target.id)
    written = []
    for entry in merge_record["target"]:
        res_type, res_id, _, version = entry["reference"].split("/")
        before = uow.version(res_type, res_id, int(version) - 1)
        current = uow.current(res_type, res_id)
        if before is None or current is None or current.deleted:
            continue
        restored = _restore(res_type, res_id, source.id, target.id, before.resource(), current.resource())
        if restored is not None:
            validate(restored)
            written.append(uow.update(restored, current))
    if not written:
        raise BusinessRule("nothing of the merge is left to undo", "Parameters.parameter.source-patient")
    written.append(_provenance(uow, "unmerge", source.id, written, agent))
    outcome = operation_outcome([Issue(f"Patient/{source.id} was unmerged from Patient/{target.id}; "
                                       f"{len(written) - 1} resource(s) restored", code="informational",
                                       severity="information")])
    restored_source = uow.current("Patient", source.id).resource()
    return MergeResult({"resourceType": "Parameters", "parameter": [
        {"name": "input", "resource": request.parameters}, {"name": "outcome", "resource": outcome},
        {"name": "result", "resource": restored_source}]}, written)


def _latest_merge(uow: UnitOfWork, source_id: str, target_id: str) -> dict:
    for stored in search.find(uow, "Provenance", [("entity", f"Patient/{source_id}"), ("_sort", "-_lastUpdated")],
                              limit=20):
        provenance = stored.resource()
        codes = {c.get("code") for c in (provenance.get("activity") or {}).get("coding", [])}
        refs = [t["reference"] for t in provenance.get("target", [])]
        if "unmerge" in codes:
            break
        if "merge" in codes and refs and refs[0].startswith(f"Patient/{target_id}/"):
            return provenance
    raise NotFound(f"no merge of Patient/{source_id} into Patient/{target_id} is recorded")


def _restore(res_type: str, res_id: str, source_id: str, target_id: str, before: dict, current: dict) -> dict | None:
    """The current content with what the merge changed put back."""
    restored = copy.deepcopy(current)
    if (res_type, res_id) == ("Patient", source_id):
        for key in ("active", "link"):
            restored.pop(key, None)
            if key in before:
                restored[key] = before[key]
        return restored
    if (res_type, res_id) == ("Patient", target_id):
        restored["link"] = [l for l in restored.get("link") or []
                            if not (l.get("type") == "replaces" and
                                    (l.get("other") or {}).get("reference") == f"Patient/{source_id}")]
        if not restored["link"]:
            del restored["link"]
        return restored
    moved = 0
    for path in reference_paths(before, source_id):
        if get_path(restored, path) == f"Patient/{target_id}":
            set_path(restored, path, get_path(before, path))
            moved += 1
    return restored if moved else None
