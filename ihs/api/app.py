"""The FHIR REST API (https://hl7.org/fhir/R4/http.html) as a Starlette application."""
from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ihs.api import bundle, capability, history, interactions, searching
from ihs.api.http import error_response, fhir_response, outcome_response, prefer, read_json
from ihs.api.observability import ObservabilityMiddleware, metrics_text
from ihs.fhir.errors import FhirError
from ihs.store.store import Store

log = logging.getLogger("ihs.api")


def _base(request: Request) -> str:
    configured = request.app.state.base_url
    return configured or str(request.base_url).rstrip("/")


def _store(request: Request) -> Store:
    return request.app.state.store


def _mark(request: Request, interaction: str) -> None:
    request.state.interaction = interaction


async def _in_session(request: Request, work, *, write: bool):
    """Run `work(uow)` in a unit of work on a worker thread (the database driver blocks)."""
    store = _store(request)

    def run():
        with store.session(write=write) as uow:
            return work(uow)

    return await run_in_threadpool(run)


# -- instance level -----------------------------------------------------------------------------

async def read(request: Request) -> Response:
    _mark(request, "read")
    t, i = request.path_params["type"], request.path_params["id"]
    outcome = await _in_session(request, lambda uow: interactions.read(uow, t, i), write=False)
    stored = outcome.stored
    if request.headers.get("if-none-match", "").replace("W/", "").strip('"') == str(stored.version):
        return Response(status_code=304, headers={"ETag": stored.etag})
    since = request.headers.get("if-modified-since")
    if since:
        try:
            if stored.last_modified.replace(microsecond=0) <= parsedate_to_datetime(since):
                return Response(status_code=304, headers={"ETag": stored.etag})
        except (TypeError, ValueError):
            pass
    return outcome_response(request, outcome, _base(request))


async def vread(request: Request) -> Response:
    _mark(request, "vread")
    p = request.path_params
    outcome = await _in_session(request, lambda uow: interactions.vread(uow, p["type"], p["id"], p["vid"]),
                                write=False)
    return outcome_response(request, outcome, _base(request))


async def update(request: Request) -> Response:
    _mark(request, "update")
    t, i = request.path_params["type"], request.path_params["id"]
    body = await read_json(request)
    if_match = request.headers.get("if-match")
    outcome = await _in_session(request, lambda uow: interactions.update(uow, t, i, body, if_match=if_match),
                                write=True)
    return outcome_response(request, outcome, _base(request))


async def patch(request: Request) -> Response:
    _mark(request, "patch")
    t, i = request.path_params["type"], request.path_params["id"]
    body = await read_json(request)
    media = request.headers.get("content-type", "")
    if_match = request.headers.get("if-match")
    outcome = await _in_session(
        request, lambda uow: interactions.patch(uow, t, i, body, media, if_match=if_match), write=True)
    return outcome_response(request, outcome, _base(request))


async def delete(request: Request) -> Response:
    _mark(request, "delete")
    t, i = request.path_params["type"], request.path_params["id"]
    await _in_session(request, lambda uow: interactions.delete(uow, t, i), write=True)
    return Response(status_code=204)


async def instance_history(request: Request) -> Response:
    _mark(request, "history-instance")
    p = request.path_params
    interactions.check_type(p["type"])
    body = await _in_session(request, lambda uow: history.bundle(
        uow, request.query_params, _base(request), p["type"], p["id"]), write=False)
    return fhir_response(body)


# -- type level ---------------------------------------------------------------------------------

async def create(request: Request) -> Response:
    _mark(request, "create")
    t = request.path_params["type"]
    body = await read_json(request)
    if_none_exist = request.headers.get("if-none-exist")
    outcome = await _in_session(
        request, lambda uow: interactions.create(uow, t, body, if_none_exist=if_none_exist), write=True)
    return outcome_response(request, outcome, _base(request))


async def conditional_update(request: Request) -> Response:
    _mark(request, "update")
    t, query = request.path_params["type"], request.url.query
    if not query:
        raise FhirError("PUT [type] needs search criteria (conditional update) or an id: PUT [type]/[id]", 405,
                        code="not-supported")
    body = await read_json(request)
    if_match = request.headers.get("if-match")
    outcome = await _in_session(
        request, lambda uow: interactions.conditional_update(uow, t, query, body, if_match=if_match), write=True)
    return outcome_response(request, outcome, _base(request))


async def conditional_delete(request: Request) -> Response:
    _mark(request, "delete")
    t, query = request.path_params["type"], request.url.query
    await _in_session(request, lambda uow: interactions.conditional_delete(uow, t, query), write=True)
    return Response(status_code=204)


def _lenient(request: Request) -> bool:
    return prefer(request, "handling") == "lenient"


async def search_type(request: Request) -> Response:
    _mark(request, "search-type")
    t = request.path_params["type"]
    query = interactions.parse_query(request.url.query)
    if request.method == "POST":
        form = await request.form()
        query += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    lenient = _lenient(request)
    body = await _in_session(
        request, lambda uow: searching.search_bundle(uow, t, query, base=_base(request), lenient=lenient),
        write=False)
    return fhir_response(body)


async def search_compartment(request: Request) -> Response:
    _mark(request, "search-compartment")
    p = request.path_params
    query = interactions.parse_query(request.url.query)
    lenient = _lenient(request)
    body = await _in_session(request, lambda uow: searching.compartment_bundle(
        uow, p["type"], p["id"], p["target"], query, base=_base(request), lenient=lenient), write=False)
    return fhir_response(body)


async def type_history(request: Request) -> Response:
    _mark(request, "history-type")
    t = request.path_params["type"]
    interactions.check_type(t)
    body = await _in_session(request, lambda uow: history.bundle(uow, request.query_params, _base(request), t),
                             write=False)
    return fhir_response(body)


# -- system level -------------------------------------------------------------------------------

async def transaction(request: Request) -> Response:
    body = await read_json(request)
    kind = body.get("type") if isinstance(body, dict) else None
    _mark(request, kind if kind in ("batch", "transaction") else "transaction")
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError("POST to the base URL takes a batch or transaction Bundle", expression="Bundle")
    wanted = prefer(request, "return") or "minimal"
    result = await run_in_threadpool(bundle.process, _store(request), body, prefer_return=wanted)
    return fhir_response(result)


async def system_history(request: Request) -> Response:
    _mark(request, "history-system")
    body = await _in_session(request, lambda uow: history.bundle(uow, request.query_params, _base(request)),
                             write=False)
    return fhir_response(body)


async def system_search(request: Request) -> Response:
    _mark(request, "search-system")
    query = interactions.parse_query(request.url.query)
    lenient = _lenient(request)
    body = await _in_session(
        request, lambda uow: searching.search_bundle(uow, None, query, base=_base(request), lenient=lenient),
        write=False)
    return fhir_response(body)


async def metadata(request: Request) -> Response:
    _mark(request, "capabilities")
    return fhir_response(capability.statement(_base(request)))


# -- operations of the platform -----------------------------------------------------------------

async def healthz(request: Request) -> Response:
    _mark(request, "healthz")
    try:
        await run_in_threadpool(_store(request).ping)
    except Exception as exc:  # any database failure means not ready
        return fhir_response({"status": "unavailable", "database": str(exc)}, 503)
    return fhir_response({"status": "ok", "database": _store(request).dialect})


async def metrics(request: Request) -> Response:
    _mark(request, "metrics")
    payload, media = metrics_text(_store(request).engine.pool)
    return Response(payload, media_type=media)


async def _fhir_error(request: Request, exc: FhirError) -> Response:
    return error_response(exc)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = {404: f"no FHIR endpoint at {request.url.path}",
               405: f"{request.method} is not supported on {request.url.path}"}.get(exc.status_code, exc.detail)
    return error_response(FhirError(message, exc.status_code, code="not-supported"))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"fields": {"request_id": request.state.request_id}})
    return error_response(FhirError("internal server error; the request id is in the X-Request-Id header", 500,
                                    code="exception"))


def create_app(store: Store, *, base_url: str | None = None) -> Starlette:
    """The ASGI application serving the FHIR API over `store`."""
    routes = [
        Route("/metadata", metadata, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/", transaction, methods=["POST"]),
        Route("/", system_search, methods=["GET"]),
        Route("/_history", system_history, methods=["GET"]),
        Route("/{type}/_search", search_type, methods=["POST"]),
        Route("/{type}/_history", type_history, methods=["GET"]),
        Route("/{type}/{id}/_history/{vid}", vread, methods=["GET"]),
        Route("/{type}/{id}/_history", instance_history, methods=["GET"]),
        Route("/{type}/{id}/{target}", search_compartment, methods=["GET"]),
        Route("/{type}/{id}", read, methods=["GET"]),
        Route("/{type}/{id}", update, methods=["PUT"]),
        Route("/{type}/{id}", patch, methods=["PATCH"]),
        Route("/{type}/{id}", delete, methods=["DELETE"]),
        Route("/{type}", search_type, methods=["GET"]),
        Route("/{type}", create, methods=["POST"]),
        Route("/{type}", conditional_update, methods=["PUT"]),
        Route("/{type}", conditional_delete, methods=["DELETE"]),
    ]
    app = Starlette(routes=routes, exception_handlers={
        FhirError: _fhir_error, HTTPException: _http_error, Exception: _server_error})
    app.state.store = store
    app.state.base_url = base_url.rstrip("/") if base_url else None
    app.add_middleware(ObservabilityMiddleware)
    return app
