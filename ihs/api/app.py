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

from ihs.api import bundle, capability, history, interactions, searching, security
from ihs.api.http import (base_url, error_response, fhir_response, in_session, mark, outcome_response, prefer,
                          read_json, store_of)
from ihs.api.operations import operation_routes
from ihs.api.security import AuthenticationMiddleware
from ihs.api.observability import ObservabilityMiddleware, metrics_text
from ihs.fhir.errors import FhirError
from ihs.store.store import Store

log = logging.getLogger("ihs.api")


def _audit(request: Request, action: str, **access):
    """The access's AuditEvent commit, for `in_session` to run on the read's own worker thread."""
    return lambda: security.record_access(store_of(request), action, **access)


# -- instance level -----------------------------------------------------------------------------

async def read(request: Request) -> Response:
    mark(request, "read")
    t, i = request.path_params["type"], request.path_params["id"]
    outcome = await in_session(request, lambda uow: interactions.read(uow, t, i), write=False,
                               then=_audit(request, "read", reference=f"{t}/{i}"))
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
    return outcome_response(request, outcome, base_url(request))


async def vread(request: Request) -> Response:
    mark(request, "vread")
    p = request.path_params
    outcome = await in_session(request, lambda uow: interactions.vread(uow, p["type"], p["id"], p["vid"]),
                               write=False, then=_audit(request, "vread",
                                                        reference=f"{p['type']}/{p['id']}/_history/{p['vid']}"))
    return outcome_response(request, outcome, base_url(request))


async def update(request: Request) -> Response:
    mark(request, "update")
    t, i = request.path_params["type"], request.path_params["id"]
    body = await read_json(request)
    if_match = request.headers.get("if-match")
    outcome = await in_session(request, lambda uow: interactions.update(uow, t, i, body, if_match=if_match),
                                write=True)
    return outcome_response(request, outcome, base_url(request))


async def patch(request: Request) -> Response:
    mark(request, "patch")
    t, i = request.path_params["type"], request.path_params["id"]
    body = await read_json(request)
    media = request.headers.get("content-type", "")
    if_match = request.headers.get("if-match")
    outcome = await in_session(
        request, lambda uow: interactions.patch(uow, t, i, body, media, if_match=if_match), write=True)
    return outcome_response(request, outcome, base_url(request))


async def delete(request: Request) -> Response:
    mark(request, "delete")
    t, i = request.path_params["type"], request.path_params["id"]
    await in_session(request, lambda uow: interactions.delete(uow, t, i), write=True)
    return Response(status_code=204)


async def instance_history(request: Request) -> Response:
    mark(request, "history-instance")
    p = request.path_params
    interactions.check_type(p["type"])

    def work(uow):
        interactions.check_history(uow, p["type"], p["id"])
        return history.bundle(uow, request.query_params, base_url(request), p["type"], p["id"])

    body = await in_session(request, work, write=False,
                            then=_audit(request, "history", reference=f"{p['type']}/{p['id']}"))
    return fhir_response(body)


# -- type level ---------------------------------------------------------------------------------

async def create(request: Request) -> Response:
    mark(request, "create")
    t = request.path_params["type"]
    body = await read_json(request)
    if_none_exist = request.headers.get("if-none-exist")
    outcome = await in_session(
        request, lambda uow: interactions.create(uow, t, body, if_none_exist=if_none_exist), write=True)
    return outcome_response(request, outcome, base_url(request))


async def conditional_update(request: Request) -> Response:
    mark(request, "update")
    t, query = request.path_params["type"], request.url.query
    if not query:
        raise FhirError("PUT [type] needs search criteria (conditional update) or an id: PUT [type]/[id]", 405,
                        code="not-supported")
    body = await read_json(request)
    if_match = request.headers.get("if-match")
    outcome = await in_session(
        request, lambda uow: interactions.conditional_update(uow, t, query, body, if_match=if_match), write=True)
    return outcome_response(request, outcome, base_url(request))


async def conditional_delete(request: Request) -> Response:
    mark(request, "delete")
    t, query = request.path_params["type"], request.url.query
    await in_session(request, lambda uow: interactions.conditional_delete(uow, t, query), write=True)
    return Response(status_code=204)


def _lenient(request: Request) -> bool:
    return prefer(request, "handling") == "lenient"


async def _search(request: Request, res_type: str | None) -> Response:
    query = interactions.parse_query(request.url.query)
    if request.method == "POST":
        form = await request.form()
        query += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    lenient = _lenient(request)

    def work(uow):
        security.check_search(uow, res_type)
        return searching.search_bundle(uow, res_type, query, base=base_url(request), lenient=lenient)

    body = await in_session(request, work, write=False,
                            then=_audit(request, "search", query=request.url.query,
                                        interaction="search-type" if res_type else "search-system"))
    return fhir_response(body)


async def search_type(request: Request) -> Response:
    mark(request, "search-type")
    return await _search(request, request.path_params["type"])


async def search_compartment(request: Request) -> Response:
    mark(request, "search-compartment")
    p = request.path_params
    query = interactions.parse_query(request.url.query)
    lenient = _lenient(request)

    def work(uow):
        security.check_search(uow, p["target"])
        return searching.compartment_bundle(uow, p["type"], p["id"], p["target"], query, base=base_url(request),
                                            lenient=lenient)

    body = await in_session(request, work, write=False,
                            then=_audit(request, "search", query=request.url.query, interaction="search-compartment"))
    return fhir_response(body)


async def type_history(request: Request) -> Response:
    mark(request, "history-type")
    t = request.path_params["type"]
    interactions.check_type(t)

    def work(uow):
        security.check_search(uow, t)
        return history.bundle(uow, request.query_params, base_url(request), t)

    body = await in_session(request, work, write=False, then=_audit(request, "search", interaction="history-type"))
    return fhir_response(body)


# -- system level -------------------------------------------------------------------------------

async def transaction(request: Request) -> Response:
    body = await read_json(request)
    kind = body.get("type") if isinstance(body, dict) else None
    mark(request, kind if kind in ("batch", "transaction") else "transaction")
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError("POST to the base URL takes a batch or transaction Bundle", expression="Bundle")
    wanted = prefer(request, "return") or "minimal"
    result = await run_in_threadpool(bundle.process, store_of(request), body, prefer_return=wanted)
    await security.audit_access(store_of(request), "operation", interaction=body["type"])
    return fhir_response(result)


async def system_history(request: Request) -> Response:
    mark(request, "history-system")
    def work(uow):
        security.check_search(uow, None)
        return history.bundle(uow, request.query_params, base_url(request))

    body = await in_session(request, work, write=False, then=_audit(request, "search", interaction="history-system"))
    return fhir_response(body)


async def system_search(request: Request) -> Response:
    mark(request, "search-system")
    return await _search(request, None)


async def metadata(request: Request) -> Response:
    mark(request, "capabilities")
    return fhir_response(capability.statement(base_url(request)))


# -- operations of the platform -----------------------------------------------------------------

async def healthz(request: Request) -> Response:
    mark(request, "healthz")
    try:
        await run_in_threadpool(store_of(request).ping)
    except Exception as exc:  # any database failure means not ready
        return fhir_response({"status": "unavailable", "database": str(exc)}, 503)
    return fhir_response({"status": "ok", "database": store_of(request).dialect})


async def metrics(request: Request) -> Response:
    mark(request, "metrics")
    payload, media = metrics_text(store_of(request).engine.pool)
    return Response(payload, media_type=media)


async def _fhir_error(request: Request, exc: FhirError) -> Response:
    if exc.status in (403, 405) and getattr(request.state, "interaction", None):
        await security.audit_access(store_of(request), "operation", status=exc.status,
                                    reference=request.url.path, interaction=request.state.interaction)
    return error_response(exc)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    message = {404: f"no FHIR endpoint at {request.url.path}",
               405: f"{request.method} is not supported on {request.url.path}"}.get(exc.status_code, exc.detail)
    return error_response(FhirError(message, exc.status_code, code="not-supported"))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"fields": {"request_id": request.state.request_id}})
    return error_response(FhirError("internal server error; the request id is in the X-Request-Id header", 500,
                                    code="exception"))


def create_app(store: Store, *, base_url: str | None = None, lifespan=None, secured: bool = True) -> Starlette:
    """The ASGI application serving the FHIR API over `store`.

    `secured=False` drops authentication, and with it the policy and the audit trail: only for
    measuring what security costs (bench/ingest.py --security off), never for serving.
    """
    routes = [
        Route("/metadata", metadata, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/", transaction, methods=["POST"]),
        Route("/", system_search, methods=["GET"]),
        Route("/_history", system_history, methods=["GET"]),
        *operation_routes(),
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
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        FhirError: _fhir_error, HTTPException: _http_error, Exception: _server_error})
    app.state.store = store
    app.state.base_url = base_url.rstrip("/") if base_url else None
    if secured:
        app.add_middleware(AuthenticationMiddleware)
    app.add_middleware(ObservabilityMiddleware)
    return app
