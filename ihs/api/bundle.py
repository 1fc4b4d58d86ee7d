"""batch and transaction Bundles (https://hl7.org/fhir/R4/http.html#transaction).

A transaction is atomic: its entries run in one unit of work, in the order the specification
sets (DELETE, POST, PUT/PATCH, GET), with `urn:uuid:` fullUrls and conditional references
(`Organization?identifier=system|value`) rewritten to the ids they resolve to. Any failed entry
rolls the whole Bundle back and the answer names the entry. A batch runs each entry on its own.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from http import HTTPStatus

import orjson

from ihs.api import interactions, security
from ihs.api.interactions import Outcome, parse_query
from ihs.fhir import validation
from ihs.fhir.errors import FhirError, Issue, NotFound, PreconditionFailed
from ihs.store import search
from ihs.store.store import Store, UnitOfWork, new_id

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


def process(store: Store, bundle: dict, *, prefer_return: str = "minimal") -> dict:
    """Run a batch or transaction Bundle and return its response Bundle."""
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError(f"POST to the base URL takes a Bundle of type batch or transaction, not '{kind}'",
                        expression="Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError("Bundle.entry must be an array", expression="Bundle.entry")
    requests = [_request_of(i, e) for i, e in enumerate(entries)]
    token = security.auditing_entries.set(False)
    try:
        return _process(store, kind, entries, requests, prefer_return)
    finally:
        security.auditing_entries.reset(token)


def _process(store: Store, kind: str, entries: list[dict], requests: list[dict], prefer_return: str) -> dict:
    if kind == "transaction":
        _validate_entries(entries, requests)
        with store.session(write=True) as uow:
            outcomes = _transaction(uow, entries, requests)
        responses = [_response(o, prefer_return) for o in outcomes]
    else:
        responses = [_batch_entry(store, i, e, r, prefer_return) for i, (e, r) in enumerate(zip(entries, requests))]
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": responses}


def _request_of(index: int, entry) -> dict:
    where = f"Bundle.entry[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise FhirError(f"{where} has no request; every batch/transaction entry needs request.method and request.url",
                        expression=f"{where}.request")
    request = entry["request"]
    method, url = request.get("method"), request.get("url")
    if method not in ORDER or not isinstance(url, str) or not url:
        raise FhirError(f"{where}.request needs a method (GET, HEAD, POST, PUT, PATCH, DELETE) and a url",
                        expression=f"{where}.request")
    resource = entry.get("resource")
    if method in ("POST", "PUT") and not isinstance(resource, dict):
        raise FhirError(f"{where} is a {method} without a resource", expression=f"{where}.resource")
    return request


def _transaction(uow: UnitOfWork, entries: list[dict], requests: list[dict]) -> list[Outcome]:
    ids = _assign_ids(uow, entries, requests)
    resolved: dict[str, str] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry.get("resource"), dict):
            try:
                _rewrite(uow, entry["resource"], ids, resolved)
            except FhirError as exc:
                raise _at_entry(exc, index) from exc
    outcomes: list[Outcome | None] = [None] * len(entries)
    for index in sorted(range(len(entries)), key=lambda i: ORDER[requests[i]["method"]]):
        try:
            outcomes[index] = _run(uow, entries[index], requests[index], ids)
        except FhirError as exc:
            raise _at_entry(exc, index) from exc
    return outcomes


def _validate_entries(entries: list[dict], requests: list[dict]) -> None:
    """Validate every resource before the write lock is taken, so writers wait on each other less."""
    for index, (entry, request) in enumerate(zip(entries, requests)):
        if request["method"] in ("POST", "PUT"):
            try:
                validation.validate(entry["resource"])
            except FhirError as exc:
                raise _at_entry(exc, index) from exc
            request["_validated"] = True


def _batch_entry(store: Store, index: int, entry: dict, request: dict, prefer_return: str) -> dict:
    try:
        with store.session(write=request["method"] not in ("GET", "HEAD")) as uow:
            outcome = _run(uow, entry, request, {})
        return _response(outcome, prefer_return)
    except FhirError as exc:
        error = _at_entry(exc, index)
        return {"response": {"status": _status_line(error.status), "outcome": error.outcome()}}


def _assign_ids(uow: UnitOfWork, entries: list[dict], requests: list[dict]) -> dict[str, str]:
    """fullUrl -> 'Type/id' for every entry that creates or updates, decided before anything is written.

    A POST whose fullUrl is a `urn:uuid:` gets that UUID as its id when it is free, so references
    to it from later Bundles (a hospital registry loaded before its patients) still resolve.
    """
    ids: dict[str, str] = {}
    wanted = [_uuid_of(e.get("fullUrl")) for e, r in zip(entries, requests) if r["method"] == "POST"]
    taken = uow.types_of([u for u in wanted if u])
    for index, (entry, request) in enumerate(zip(entries, requests)):
        full_url, method, url = entry.get("fullUrl"), request["method"], request["url"]
        resource = entry.get("resource")
        target = None
        try:
            if method == "POST":
                res_type = url.split("?")[0].strip("/")
                existing = None
                if request.get("ifNoneExist"):
                    existing = _one(uow, res_type, request["ifNoneExist"].lstrip("?"), "ifNoneExist")
                uuid = _uuid_of(full_url)
                chosen = existing.id if existing else (uuid if uuid and uuid not in taken else new_id())
                target = f"{res_type}/{chosen}"
                request["_assigned"] = chosen
                request["_existing"] = existing
            elif method == "PUT" and "?" in url:
                res_type, query = url.split("?", 1)
                existing = _one(uow, res_type, query, "conditional update")
                chosen = existing.id if existing else (resource.get("id") or new_id())
                target = f"{res_type}/{chosen}"
                request["_assigned"] = chosen
            elif method == "PUT":
                target = url.strip("/").split("?")[0]
        except FhirError as exc:
            raise _at_entry(exc, index) from exc
        if full_url and target:
            if full_url in ids:
                raise FhirError(f"Bundle.entry[{index}].fullUrl '{full_url}' appears twice in the transaction")
            ids[full_url] = target
            # An absolute fullUrl on this server is also referred to by its relative form.
            tail = "/".join(full_url.rstrip("/").split("/")[-2:])
            if full_url.startswith("http") and tail == target:
                ids.setdefault(tail, target)
    _add_stored_uuids(uow, entries, ids)
    return ids


def _uuid_of(full_url: str | None) -> str | None:
    if full_url and full_url.startswith("urn:uuid:"):
        candidate = full_url[9:]
        return candidate if interactions.ID_PATTERN.fullmatch(candidate) else None
    return None


def _add_stored_uuids(uow: UnitOfWork, entries: list[dict], ids: dict[str, str]) -> None:
    """Resolve `urn:uuid:` references to resources stored by earlier Bundles under that UUID."""
    outside: set[str] = set()

    def collect(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "reference" and isinstance(value, str) and value.startswith("urn:uuid:") \
                        and value not in ids:
                    outside.add(value[9:])
                elif isinstance(value, (dict, list)):
                    collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for entry in entries:
        collect(entry.get("resource"))
    for uuid, types in uow.types_of(sorted(outside)).items():
        if len(types) == 1:
            ids[f"urn:uuid:{uuid}"] = f"{types[0]}/{uuid}"


def _one(uow: UnitOfWork, res_type: str, query: str, what: str):
    """The one resource the caller may see that matches (resources hidden from them never match)."""
    interactions.check_type(res_type)
    criteria = parse_query(query)
    matches = search.find(uow, res_type, criteria, limit=2,
                          restriction=security.search_restriction(uow, res_type, criteria))
    if len(matches) > 1:
        raise PreconditionFailed(f"{what} '{res_type}?{query}' matches {len(matches)} resources; it must match one")
    return matches[0] if matches else None


def _rewrite(uow: UnitOfWork, node, ids: dict[str, str], resolved: dict[str, str]):
    """Replace references to other entries' fullUrls and conditional references, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                if value in ids:
                    node[key] = ids[value]
                elif key == "reference" and "?" in value and not value.startswith(("#", "http", "urn:")):
                    node[key] = _conditional_reference(uow, value, resolved)
                elif key == "reference" and value.startswith("urn:uuid:"):
                    raise FhirError(f"reference '{value}' names neither an entry of this Bundle nor a stored "
                                    "resource", expression="reference")
            elif isinstance(value, (dict, list)):
                _rewrite(uow, value, ids, resolved)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str) and value in ids:
                node[i] = ids[value]
            elif isinstance(value, (dict, list)):
                _rewrite(uow, value, ids, resolved)


def _conditional_reference(uow: UnitOfWork, reference: str, resolved: dict[str, str]) -> str:
    if reference not in resolved:
        res_type, query = reference.split("?", 1)
        match = _one(uow, res_type, query, "conditional reference")
        if match is None:
            raise NotFound(f"conditional reference '{reference}' matches no resource")
        resolved[reference] = f"{res_type}/{match.id}"
    return resolved[reference]


def _run(uow: UnitOfWork, entry: dict, request: dict, ids: dict[str, str]) -> Outcome:
    method, url = request["method"], request["url"].lstrip("/")
    path, _, query = url.partition("?")
    parts = path.split("/")
    resource = entry.get("resource")
    if method == "POST":
        if request.get("_existing") is not None:
            return Outcome(200, request["_existing"])
        return interactions.create(uow, parts[0], resource, if_none_exist=request.get("ifNoneExist"),
                                   assigned_id=request.get("_assigned"), validated=request.get("_validated", False))
    if method == "PUT":
        if query:
            resource["id"] = request["_assigned"]
            return interactions.update(uow, parts[0], request["_assigned"], resource, if_match=request.get("ifMatch"),
                                       validated=request.get("_validated", False))
        _expect_instance(parts, url)
        return interactions.update(uow, parts[0], parts[1], resource, if_match=request.get("ifMatch"),
                                   validated=request.get("_validated", False))
    if method == "PATCH":
        _expect_instance(parts, url)
        # JSON Patch travels in a Binary, FHIR Patch as a Parameters resource.
        if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
            kind, document = "application/json-patch+json", orjson.loads(base64.b64decode(resource.get("data", "")))
        else:
            kind, document = "application/fhir+json", resource
        return interactions.patch(uow, parts[0], parts[1], document, kind, if_match=request.get("ifMatch"))
    if method == "DELETE":
        if query:
            return interactions.conditional_delete(uow, parts[0], query)
        _expect_instance(parts, url)
        return interactions.delete(uow, parts[0], parts[1])
    # GET / HEAD
    if len(parts) == 2:
        return interactions.read(uow, parts[0], parts[1])
    if len(parts) == 4 and parts[2] == "_history":
        return interactions.vread(uow, parts[0], parts[1], parts[3])
    from ihs.api import searching
    security.check_search(uow, parts[0] or None)
    return Outcome(200, body=searching.search_bundle(uow, parts[0] if parts[0] else None, parse_query(query),
                                                     base=""))


def _expect_instance(parts: list[str], url: str) -> None:
    if len(parts) != 2 or not parts[1]:
        raise FhirError(f"request.url '{url}' must name one resource as [type]/[id]")


def _at_entry(exc: FhirError, index: int) -> FhirError:
    issues = [Issue(f"Bundle.entry[{index}]: {i.diagnostics}",
                    f"Bundle.entry[{index}].resource" + ("." + i.expression.split(".", 1)[1]
                                                         if i.expression and "." in i.expression else ""),
                    i.code, i.severity) for i in exc.issues]
    return FhirError(issues, exc.status)


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _response(outcome: Outcome, prefer_return: str) -> dict:
    response: dict = {"status": _status_line(outcome.status)}
    entry: dict = {"response": response}
    stored = outcome.stored
    if stored is not None:
        response["location"] = outcome.location
        response["etag"] = stored.etag
        response["lastModified"] = datetime.fromtimestamp(stored.last_updated / 1e6, timezone.utc).isoformat()
        entry["fullUrl"] = f"{stored.type}/{stored.id}"
        if (prefer_return == "representation" or outcome.status == 200 and outcome.body is None) and stored.content:
            entry["resource"] = stored.resource()
    if outcome.body is not None:
        entry["resource"] = outcome.body
    return entry
