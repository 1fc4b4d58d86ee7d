"""FHIR Bulk Data Access (IG 2.0) `$export`: system, Patient and Group level, asynchronous.

Kick-off `GET|POST [base]/$export`, `[base]/Patient/$export`, `[base]/Group/[id]/$export` with
`Prefer: respond-async` answers 202 with `Content-Location: [base]/$export-status/[job]`. Polling
that URL (on any worker: jobs live in the database) answers 202 with `X-Progress` while the job
runs, then 200 with the manifest, whose `deleted` array lists the Bundles of deletions since
`_since`; its files are served from `[base]/$export-file/[job]/[name]`; DELETE on the status URL
cancels.
Parameters: `_type`, `_since`, `_typeFilter` (repeatable, OR-ed per type), `_outputFormat`
(application/fhir+ndjson) and, IHS's own, `_deidentify=true` for the research form (always for a
caller in the `researcher` role). With an authenticated caller, the job belongs to that caller (the
user of that client), its scopes decide which types it may export, and the access policy decides
which resources of them, as for its searches: the caller's claims are stored with the job, so the
worker that runs or resumes it asks the policy for that caller (ihs/analytics/bulk.py). Each
kick-off is recorded as an `export` AuditEvent.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ihs.analytics.bulk import ExportRequest, caller_claims
from ihs.analytics.jobs import ExportJobs
from ihs.api import security
from ihs.api.http import base_url, fhir_response, mark, prefer, read_json, store_of
from ihs.fhir.errors import FhirError, Issue, operation_outcome
from ihs.fhir.indexing import date_bounds
from ihs.fhir.validation import resource_types
from ihs.fhir.searchparams import registry
from ihs.store.store import instant

PARAMETERS = ("_type", "_since", "_typeFilter", "_outputFormat", "_deidentify")


def jobs_of(request: Request) -> ExportJobs:
    """The app's export jobs (created on first use, over the app's store)."""
    jobs = getattr(request.app.state, "export_jobs", None)
    if jobs is None:
        jobs = request.app.state.export_jobs = ExportJobs(store_of(request))
    return jobs


def _owner(request: Request) -> str | None:
    """Whose job it is: the user of the client (two users of one app never see each other's exports)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return None
    client_id = getattr(principal, "client_id", None)
    if client_id and client_id != principal.subject:
        return f"{client_id}|{principal.subject}"
    return principal.subject


async def _parameters(request: Request) -> list[tuple[str, str]]:
    """The kick-off parameters from the query string and, for POST, a Parameters body."""
    found = list(request.query_params.multi_items())
    if request.method == "POST" and request.headers.get("content-length", "0") != "0":
        body = await read_json(request)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError("POST $export takes a Parameters resource", expression="Parameters")
        for parameter in body.get("parameter", []):
            values = [v for k, v in parameter.items() if k.startswith("value")]
            if parameter.get("name") and values:
                found.append((parameter["name"], str(values[0])))
    unknown = sorted({name for name, _ in found if name not in PARAMETERS and name != "_format"})
    if unknown and prefer(request, "handling") == "strict":
        raise FhirError(f"unsupported $export parameter(s): {', '.join(unknown)}", code="not-supported")
    return found


def _since(values: list[str]) -> int | None:
    if not values:
        return None
    bounds = date_bounds(values[-1].replace(" ", "+"))
    if bounds is None:
        raise FhirError(f"_since '{values[-1]}' is not an instant (e.g. 2024-01-01T00:00:00Z)", expression="_since")
    return bounds[0]


def _allowed(request: Request) -> dict | None:
    """Per type, the narrowing the caller's scopes impose (None: no caller, everything allowed)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return None
    from ihs.auth.scopes import scope_criteria

    allowed = {}
    for res_type in registry().resource_types():
        criteria = scope_criteria(principal.scopes, "export", res_type)
        if criteria != []:
            allowed[res_type] = None if criteria is None else [list(q) for q in criteria]
    if not allowed:
        raise FhirError("the access token grants no export scope (e.g. system/*.rs)", 403, code="forbidden")
    return allowed


def _caller(request: Request) -> dict | None:
    principal = getattr(request.state, "principal", None)
    return None if principal is None else caller_claims(principal)


def _deidentify(request: Request, values: list[str]) -> bool:
    """Whether to export the research form: asked for, or always for a caller in the researcher role."""
    principal = getattr(request.state, "principal", None)
    if principal is not None and "researcher" in getattr(principal, "roles", ()):
        return True
    if values and values[-1].lower() not in ("true", "false"):
        raise FhirError("_deidentify is true or false", expression="_deidentify")
    return bool(values) and values[-1].lower() == "true"


async def _kick_off(request: Request, level: str, group_id: str | None = None) -> Response:
    mark(request, "export")
    if prefer(request, "respond-async") is None:
        raise FhirError("$export runs asynchronously: send the header 'Prefer: respond-async'", code="required")
    params = await _parameters(request)
    values = {name: [v for n, v in params if n == name] for name in PARAMETERS}
    types = [t.strip() for value in values["_type"] for t in value.split(",") if t.strip()]
    export_request = ExportRequest(level=level, group_id=group_id, types=types or None,
                                   since=_since(values["_since"]), type_filters=values["_typeFilter"],
                                   output_format=(values["_outputFormat"] or ["application/fhir+ndjson"])[-1],
                                   allowed=_allowed(request), caller=_caller(request),
                                   deidentify=_deidentify(request, values["_deidentify"]))
    unknown = [t for t in types if t not in resource_types()]
    if unknown:
        raise FhirError(f"_type names {', '.join(unknown)}, which are not FHIR R4 resource types", expression="_type")
    if export_request.allowed is not None and types:
        denied = [t for t in types if t not in export_request.allowed]
        if denied:
            raise FhirError(f"the access token does not allow exporting {', '.join(denied)}", 403, code="forbidden")
    export_request.check()
    # recorded before the job starts: an export that cannot be audited does not run
    await security.audit_access(store_of(request), "export", status=202, query=request.url.query or None,
                                reference=f"Group/{group_id}" if group_id else None)
    job_id = jobs_of(request).start(export_request, request_url=str(request.url), owner=_owner(request))
    outcome = operation_outcome([Issue(f"export job {job_id} started", code="informational", severity="information")])
    return fhir_response(outcome, 202, {"Content-Location": f"{base_url(request)}/$export-status/{job_id}"})


async def system_export(request: Request) -> Response:
    return await _kick_off(request, "system")


async def patient_export(request: Request) -> Response:
    return await _kick_off(request, "patient")


async def group_export(request: Request) -> Response:
    return await _kick_off(request, "group", request.path_params["id"])


async def status(request: Request) -> Response:
    mark(request, "export-status")
    jobs, job_id, owner = jobs_of(request), request.path_params["job"], _owner(request)
    if request.method == "DELETE":
        jobs.cancel(job_id, owner)
        return fhir_response(operation_outcome([Issue(f"export job {job_id} cancelled", code="informational",
                                                      severity="information")]), 202)
    state = jobs.state(job_id, owner)
    if state["status"] == "in-progress":
        return Response(status_code=202, headers={"X-Progress": state.get("progress", "in progress"),
                                                  "Retry-After": "1"})
    if state["status"] == "error":
        return fhir_response(FhirError(state["error"], state.get("status_code", 500), code="exception").outcome(),
                             state.get("status_code", 500))
    base = base_url(request)
    manifest = {"transactionTime": instant(state["transaction_time"]), "request": state["request_url"],
                "requiresAccessToken": owner is not None,
                "output": [_item(base, job_id, f) for f in state["files"] if not f.get("deleted")],
                "deleted": [_item(base, job_id, f) for f in state["files"] if f.get("deleted")],
                "error": []}
    return fhir_response(manifest, 200)


def _item(base: str, job_id: str, file: dict) -> dict:
    return {"type": file["type"], "url": f"{base}/$export-file/{job_id}/{file['path']}", "count": file["count"]}


async def output_file(request: Request) -> Response:
    mark(request, "export-file")
    chunks = jobs_of(request).file(request.path_params["job"], request.path_params["name"], _owner(request))
    return StreamingResponse(chunks, media_type="application/fhir+ndjson")


ROUTES = [
    Route("/$export", system_export, methods=["GET", "POST"]),
    Route("/Patient/$export", patient_export, methods=["GET", "POST"]),
    Route("/Group/{id}/$export", group_export, methods=["GET", "POST"]),
    Route("/$export-status/{job}", status, methods=["GET", "DELETE"]),
    Route("/$export-file/{job}/{name}", output_file, methods=["GET"]),
]
