"""The FHIR REST interactions on one resource type or instance, independent of HTTP.

The HTTP routes and the batch/transaction processor both call these functions, so a Bundle
entry behaves exactly like the same request sent on its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from ihs.api import security
from ihs.fhir import validation
from ihs.fhir.errors import BusinessRule, FhirError, Gone, NotFound, PreconditionFailed
from ihs.store import search
from ihs.store.store import StoredResource, UnitOfWork

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass
class Outcome:
    """What an interaction did: the HTTP status and the stored version it produced or found."""

    status: int
    stored: StoredResource | None = None
    body: dict | None = None  # a non-resource answer (OperationOutcome, Bundle)
    headers: dict = field(default_factory=dict)

    @property
    def location(self) -> str | None:
        s = self.stored
        return f"{s.type}/{s.id}/_history/{s.version}" if s else None


def check_type(res_type: str) -> None:
    if res_type not in validation.resource_types():
        raise NotFound(f"'{res_type}' is not a FHIR R4 resource type")


def check_id(res_id: str) -> None:
    if not ID_PATTERN.fullmatch(res_id):
        raise FhirError(f"'{res_id}' is not a valid id: 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")


def parse_query(query: str) -> list[tuple[str, str]]:
    """A search query string (the part after '?') as (name, value) pairs."""
    return parse_qsl(query, keep_blank_values=True)


def _check_body(res_type: str, resource: dict, res_id: str | None = None, *, validated: bool = False) -> None:
    if not isinstance(resource, dict):
        raise FhirError("the request body must be a JSON object holding a FHIR resource")
    if resource.get("resourceType") != res_type:
        raise FhirError(f"the body's resourceType is '{resource.get('resourceType')}' but the URL names {res_type}",
                        expression="resourceType")
    if res_id is not None and resource.get("id") != res_id:
        raise FhirError(f"the body's id '{resource.get('id')}' must equal the id in the URL, '{res_id}'",
                        expression=f"{res_type}.id")
    if not validated:
        validation.validate(resource)


def _check_version(current: StoredResource, if_match: str | None) -> None:
    if if_match is None:
        return
    wanted = if_match.strip()
    if wanted.startswith("W/"):
        wanted = wanted[2:]
    wanted = wanted.strip('"')
    if wanted != str(current.version):
        raise PreconditionFailed(f"If-Match asks for version {wanted} of {current.type}/{current.id} "
                                 f"but the current version is {current.version}")


def _single_match(uow: UnitOfWork, res_type: str, query: str, what: str) -> StoredResource | None:
    """The one resource the caller may see that matches: what they may not see never matches, so a
    conditional interaction neither reveals nor touches it."""
    criteria = parse_query(query)
    matches = search.find(uow, res_type, criteria, limit=2,
                          restriction=security.search_restriction(uow, res_type, criteria))
    if len(matches) > 1:
        raise PreconditionFailed(f"{what} '{res_type}?{query}' matches more than one resource; make the criteria "
                                 "more selective")
    return matches[0] if matches else None


def create(uow: UnitOfWork, res_type: str, resource: dict, *, if_none_exist: str | None = None,
           method: str = "POST", assigned_id: str | None = None, validated: bool = False) -> Outcome:
    """create, or conditional create when `if_none_exist` holds search criteria.

    The server assigns the id; a transaction passes `assigned_id` when it chose one up front, and
    `validated` when it already validated the resource outside its write lock.
    """
    check_type(res_type)
    resource.pop("id", None)
    _check_body(res_type, resource, validated=validated)
    if assigned_id:
        resource["id"] = assigned_id
    if if_none_exist:
        existing = _single_match(uow, res_type, if_none_exist.lstrip("?"), "If-None-Exist")
        if existing is not None:
            security.check(uow, "read", res_type, existing.resource())
            return Outcome(200, existing)
    return _create(uow, res_type, resource, method)


def _create(uow: UnitOfWork, res_type: str, resource: dict, method: str) -> Outcome:
    security.check(uow, "create", res_type, resource)
    security.stamp_author(resource)
    stored = uow.create(resource, method=method)
    security.audit_write(uow, "create", f"{res_type}/{stored.id}")
    return Outcome(201, stored)


def _existing(uow: UnitOfWork, res_type: str, res_id: str) -> StoredResource:
    """The current version, or 404 / 410."""
    check_type(res_type)
    current = uow.current(res_type, res_id)
    if current is None:
        raise NotFound(f"{res_type}/{res_id} does not exist")
    if current.deleted:
        raise Gone(f"{res_type}/{res_id} was deleted (version {current.version})")
    return current


def read(uow: UnitOfWork, res_type: str, res_id: str) -> Outcome:
    current = _existing(uow, res_type, res_id)
    security.check(uow, "read", res_type, current.resource())
    return Outcome(200, current)


def check_history(uow: UnitOfWork, res_type: str, res_id: str) -> None:
    """The access policy decides on a resource's history by its latest content (a deleted one's too)."""
    check_type(res_type)
    current = uow.current(res_type, res_id)
    if current is None:
        raise NotFound(f"{res_type}/{res_id} does not exist")
    latest = current if not current.deleted else uow.version(res_type, res_id, current.version - 1)
    if latest is not None and latest.content:
        security.check(uow, "history-instance", res_type, latest.resource())


def vread(uow: UnitOfWork, res_type: str, res_id: str, version: str) -> Outcome:
    check_type(res_type)
    if not version.isdigit():
        raise NotFound(f"version '{version}' of {res_type}/{res_id} does not exist")
    stored = uow.version(res_type, res_id, int(version))
    if stored is None:
        raise NotFound(f"version {version} of {res_type}/{res_id} does not exist")
    if stored.deleted:
        raise Gone(f"version {version} of {res_type}/{res_id} is a deletion")
    security.check(uow, "vread", res_type, stored.resource())
    return Outcome(200, stored)


def update(uow: UnitOfWork, res_type: str, res_id: str, resource: dict, *, if_match: str | None = None,
           method: str = "PUT", validated: bool = False) -> Outcome:
    """update, or create-on-update with a client-chosen id when the resource does not exist."""
    check_type(res_type)
    check_id(res_id)
    _check_body(res_type, resource, res_id, validated=validated)
    current = uow.current(res_type, res_id)
    if current is None:
        if if_match is not None:
            raise PreconditionFailed(f"If-Match was given but {res_type}/{res_id} does not exist")
        return _create(uow, res_type, resource, method)
    _check_version(current, if_match)
    return Outcome(201 if current.deleted else 200, _update(uow, resource, current, method))


def _update(uow: UnitOfWork, resource: dict, current: StoredResource, method: str) -> StoredResource:
    previous = None if current.deleted else current.resource()
    if previous is not None:
        security.check(uow, "read", current.type, previous)
    security.check(uow, "update" if method != "PATCH" else "patch", current.type, resource)
    security.stamp_author(resource, previous)
    stored = uow.update(resource, current, method=method)
    security.audit_write(uow, "patch" if method == "PATCH" else "update", f"{current.type}/{current.id}")
    return stored


def conditional_update(uow: UnitOfWork, res_type: str, query: str, resource: dict, *,
                       if_match: str | None = None) -> Outcome:
    check_type(res_type)
    match = _single_match(uow, res_type, query, "conditional update")
    if match is None:
        if resource.get("id"):
            return update(uow, res_type, resource["id"], resource, if_match=if_match)
        return create(uow, res_type, resource, method="PUT")
    if resource.get("id") not in (None, match.id):
        raise FhirError(f"the body's id '{resource['id']}' differs from the matching resource {res_type}/{match.id}",
                        expression=f"{res_type}.id")
    resource["id"] = match.id
    return update(uow, res_type, match.id, resource, if_match=if_match)


def patch(uow: UnitOfWork, res_type: str, res_id: str, document, content_type: str, *,
          if_match: str | None = None) -> Outcome:
    """patch with JSON Patch (application/json-patch+json) or FHIR Patch (a Parameters resource)."""
    from ihs.fhir import patch as patching

    current = _existing(uow, res_type, res_id)  # _update asks the policy about reading it
    _check_version(current, if_match)
    if "json-patch" in content_type:
        if not isinstance(document, list):
            raise FhirError("a JSON Patch document is a JSON array of operations")
        patched = patching.apply_json_patch(current.resource(), document)
    elif isinstance(document, dict) and document.get("resourceType") == "Parameters":
        patched = patching.apply_fhir_patch(current.resource(), document)
    else:
        raise FhirError("PATCH takes a JSON Patch (Content-Type application/json-patch+json) or a FHIR Patch "
                        "Parameters resource (application/fhir+json)", 415 if "json" not in content_type else 400)
    _check_body(res_type, patched, res_id)
    return Outcome(200, _update(uow, patched, current, "PATCH"))


def delete(uow: UnitOfWork, res_type: str, res_id: str) -> Outcome:
    """delete; deleting what is already deleted or never existed succeeds (idempotent)."""
    check_type(res_type)
    current = uow.current(res_type, res_id)
    if current is None or current.deleted:
        return Outcome(204)
    return Outcome(204, _delete(uow, current))


def _delete(uow: UnitOfWork, current: StoredResource) -> StoredResource:
    security.check(uow, "delete", current.type, current.resource())
    stored = uow.delete(current)
    security.audit_write(uow, "delete", f"{current.type}/{current.id}")
    return stored


def conditional_delete(uow: UnitOfWork, res_type: str, query: str) -> Outcome:
    check_type(res_type)
    if not query:
        raise BusinessRule("conditional delete needs search criteria; to delete one resource use DELETE [type]/[id]")
    criteria = parse_query(query)
    matches = search.find(uow, res_type, criteria, limit=2,
                          restriction=security.search_restriction(uow, res_type, criteria))
    if len(matches) > 1:
        raise PreconditionFailed(f"conditional delete '{res_type}?{query}' matches more than one resource")
    if not matches:
        return Outcome(204)
    return Outcome(204, _delete(uow, matches[0]))
