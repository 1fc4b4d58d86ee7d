"""HTTP details of the FHIR API: reading bodies, the Prefer header, FHIR responses."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING
from email.utils import format_datetime

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ihs.fhir.errors import FhirError, Issue, operation_outcome

if TYPE_CHECKING:
    from ihs.api.interactions import Outcome

FHIR_JSON = "application/fhir+json"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json", "text/json")
MAX_BODY = int(os.environ.get("IHS_MAX_BODY_BYTES", 64 * 1024 * 1024))


def base_url(request: Request) -> str:
    """The FHIR base URL clients see: configured, or as the request reached us."""
    return request.app.state.base_url or str(request.base_url).rstrip("/")


def store_of(request: Request):
    return request.app.state.store


def mark(request: Request, interaction: str) -> None:
    """Name the FHIR interaction or operation of this request, for metrics and logs."""
    request.state.interaction = interaction


async def in_session(request: Request, work, *, write: bool, then=None):
    """Run `work(uow)` in a unit of work on a worker thread (the database driver blocks).

    `then()` runs on the same thread once the unit of work has ended (a read's AuditEvent commit):
    one thread hop per request instead of two.
    """
    store = store_of(request)

    def run():
        with store.session(write=write) as uow:
            result = work(uow)
        if then is not None:
            then()
        return result

    return await run_in_threadpool(run)


def fhir_response(body, status: int = 200, headers: dict | None = None) -> Response:
    """A FHIR JSON response; `body` is a dict or already-serialized JSON text."""
    if isinstance(body, str):
        payload = body.encode()
    elif body is None:
        payload = b""
    else:
        payload = orjson.dumps(body)
    return Response(payload, status, headers, media_type=f"{FHIR_JSON}; charset=utf-8" if payload else None)


def error_response(error: FhirError) -> Response:
    return fhir_response(error.outcome(), error.status)


async def read_json(request: Request):
    """The request body as JSON, after checking its media type and size."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise FhirError(f"unsupported Content-Type '{media or 'none'}'; send application/fhir+json", 415,
                        code="not-supported")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise FhirError(f"the body is {length} bytes; the limit is {MAX_BODY}", 413, code="too-costly")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise FhirError(f"the body is larger than the limit of {MAX_BODY} bytes", 413, code="too-costly")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise FhirError("the request has no body; send a FHIR resource as JSON", code="required")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FhirError(f"the body is not valid JSON: {exc}", code="structure") from exc


def prefer(request: Request, name: str) -> str | None:
    """One setting of the Prefer header, e.g. prefer(request, 'return') -> 'minimal'."""
    for part in request.headers.get("prefer", "").split(";"):
        for item in part.split(","):
            key, _, value = item.strip().partition("=")
            if key.strip().lower() == name:
                return value.strip().strip('"')
    return None


def outcome_response(request: Request, outcome: Outcome, base: str) -> Response:
    """The response to a create/read/update/patch: headers from the stored version, body by Prefer."""
    stored = outcome.stored
    headers = dict(outcome.headers)
    if stored is None:
        return fhir_response(outcome.body, outcome.status, headers)
    headers["ETag"] = stored.etag
    headers["Last-Modified"] = format_datetime(stored.last_modified, usegmt=True)
    if outcome.status == 201:
        headers["Location"] = f"{base}/{outcome.location}"
    if request.method in ("GET", "HEAD"):
        return fhir_response(stored.content, outcome.status, headers)
    wanted = prefer(request, "return") or "representation"
    if wanted == "minimal":
        return fhir_response(None, outcome.status, headers)
    if wanted == "OperationOutcome":
        verb = {201: "created", 200: "updated"}.get(outcome.status, "stored")
        return fhir_response(operation_outcome([Issue(f"{stored.type}/{stored.id} {verb} as version {stored.version}",
                                                      code="informational", severity="information")]),
                             outcome.status, headers)
    return fhir_response(stored.content, outcome.status, headers)
