"""SQL-on-FHIR `$viewdefinition-run` (and the v2 `ViewDefinition/$run` spelling): a view's rows, synchronously.

In R4 a ViewDefinition is stored as a Library (ihs/analytics/library.py), so the endpoints are
`[base]/$viewdefinition-run` (viewReference=Library/[id] or an inline viewResource),
`[base]/Library/[id]/$viewdefinition-run`, `[base]/ViewDefinition/$run` and
`[base]/ViewDefinition/[id]/$run` (the id of the Library). `POST [base]/ViewDefinition` stores a
ViewDefinition (answering with its Library) and `GET [base]/ViewDefinition/[id]` reads it back.
Parameters: `_format` (json, ndjson, csv, parquet; default ndjson), `header` (CSV), `patient` and
`group` (compartment narrowing), `_since`, `_limit`, and inline `resource`s to run over instead of
the store.
"""
from __future__ import annotations

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ihs.analytics.library import load_view, save_view
from ihs.analytics.run import view_resources, view_rows
from ihs.analytics.tables import FORMATS, output_format, render
from ihs.analytics.viewdef import ViewError, compile_view
from ihs.api.http import base_url, fhir_response, in_session, mark, read_json, store_of
from ihs.fhir.errors import FhirError
from ihs.fhir.fhirpath_compile import parse_reference
from ihs.fhir.indexing import date_bounds


def _reference_id(value: str, expected: str) -> str:
    res_type, res_id = parse_reference(value) if "/" in value else (expected, value)
    if res_type != expected or not res_id:
        raise FhirError(f"'{value}' is not a reference to a {expected}", expression=expected.lower())
    return res_id


async def _parameters(request: Request) -> dict[str, list]:
    """Parameters by name, from the query string and, for POST, a Parameters body."""
    found: dict[str, list] = {}
    for name, value in request.query_params.multi_items():
        found.setdefault(name, []).append(value)
    if request.method == "POST" and (await request.body()).strip():
        body = await read_json(request)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError("POST $viewdefinition-run takes a Parameters resource", expression="Parameters")
        for parameter in body.get("parameter", []):
            name = parameter.get("name")
            if "resource" in parameter:
                value = parameter["resource"]
            else:
                values = [v for k, v in parameter.items() if k.startswith("value")]
                if not values:
                    continue
                value = values[0]
                if isinstance(value, dict) and "reference" in value:
                    value = value["reference"]
            found.setdefault(name, []).append(value)
    return found


def _one(params: dict, name: str, default=None):
    values = params.get(name) or []
    if len(values) > 1:
        raise FhirError(f"parameter '{name}' may appear once", expression=name)
    return values[0] if values else default


def _limit(params: dict) -> int | None:
    value = _one(params, "_limit")
    if value is None:
        return None
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = -1
    if limit < 0:
        raise FhirError(f"_limit '{value}' is not a whole number", expression="_limit")
    return limit


def _since(params: dict) -> int | None:
    value = _one(params, "_since")
    if value is None:
        return None
    bounds = date_bounds(str(value).replace(" ", "+"))
    if bounds is None:
        raise FhirError(f"_since '{value}' is not an instant", expression="_since")
    return bounds[0]


def _boolean(value) -> bool:
    return value if isinstance(value, bool) else str(value).lower() != "false"


async def _run(request: Request, library_id: str | None) -> Response:
    mark(request, "viewdefinition-run")
    params = await _parameters(request)
    inline = _one(params, "viewResource")
    reference = _one(params, "viewReference")
    if library_id is None and (inline is None) == (reference is None):
        raise FhirError("name the view with exactly one of viewReference (Library/[id]) or viewResource",
                        expression="viewReference")
    if inline is not None and not isinstance(inline, dict):
        raise ViewError("viewResource must be a ViewDefinition object", "viewResource")
    if inline is None:
        library_id = library_id or _reference_id(reference, "Library")
        inline = await in_session(request, lambda uow: load_view(uow, library_id), write=False)
    view = compile_view(inline)
    fmt = output_format(_one(params, "_format"))
    header = _boolean(_one(params, "header", True))
    limit, since = _limit(params), _since(params)
    given = params.get("resource")
    if given is not None:
        resources = iter([r for r in given if isinstance(r, dict)])
    else:
        patients = [_reference_id(str(p), "Patient") for p in params.get("patient", [])]
        groups = [_reference_id(str(g), "Group") for g in params.get("group", [])]
        resources = view_resources(store_of(request), view, patients=patients, groups=groups, since=since)
    chunks = render(view, view_rows(view, resources, limit), fmt, header=header)
    if fmt == "parquet":
        return Response(await run_in_threadpool(lambda: b"".join(chunks)), media_type=FORMATS[fmt])
    # the first chunk is computed before answering, so an error in the view is still an OperationOutcome
    first = await run_in_threadpool(next, chunks, b"")

    async def body():
        yield first
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    return StreamingResponse(body(), media_type=FORMATS[fmt])


async def run_system(request: Request) -> Response:
    return await _run(request, None)


async def run_instance(request: Request) -> Response:
    return await _run(request, request.path_params["id"])


async def store_definition(request: Request) -> Response:
    mark(request, "viewdefinition-create")
    definition = await read_json(request)
    stored = await in_session(request, lambda uow: save_view(uow, definition), write=True)
    return fhir_response(stored.content, 201, {"Location": f"{base_url(request)}/Library/{stored.id}/_history/1",
                                               "ETag": stored.etag})


async def read_definition(request: Request) -> Response:
    mark(request, "viewdefinition-read")
    library_id = request.path_params["id"]
    definition = await in_session(request, lambda uow: load_view(uow, library_id), write=False)
    return fhir_response(definition)


ROUTES = [
    Route("/$viewdefinition-run", run_system, methods=["GET", "POST"]),
    Route("/Library/{id}/$viewdefinition-run", run_instance, methods=["GET", "POST"]),
    Route("/ViewDefinition/$run", run_system, methods=["GET", "POST"]),
    Route("/ViewDefinition/{id}/$run", run_instance, methods=["GET", "POST"]),
    Route("/ViewDefinition", store_definition, methods=["POST"]),
    Route("/ViewDefinition/{id}", read_definition, methods=["GET"]),
]
