"""CDS Hooks 2.0 endpoints: GET /cds-services, POST /cds-services/{id}, POST /cds-services/{id}/feedback.

Every call is authenticated by the client's signed JWT when CDS clients are registered
(ihs/cds/client_auth.py); responses are plain JSON as the specification defines them, errors
OperationOutcomes.
"""
from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.api.http import base_url, in_session, mark, read_json
from ihs.cds import client_auth, issues, service
from ihs.cds.medication import LOCAL, instant
from ihs.fhir.errors import FhirError, Issue


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _authenticate(request: Request, *audiences: str) -> None:
    client_auth.authenticate(request.headers.get("authorization"), list(audiences))


async def discovery(request: Request) -> Response:
    mark(request, "cds-discovery")
    _authenticate(request, f"{base_url(request)}/cds-services")
    return _json(service.discovery())


async def invoke(request: Request) -> Response:
    mark(request, "cds-service")
    service_id = request.path_params["id"]
    _authenticate(request, f"{base_url(request)}/cds-services/{service_id}")
    body = await read_json(request)
    base = base_url(request)
    return _json(await in_session(request, lambda uow: service.call(uow, service_id, body, base=base), write=True))


def _feedback_items(body) -> list[dict]:
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise FhirError("a feedback request is an object with a non-empty 'feedback' array", expression="feedback")
    problems = []
    for index, item in enumerate(body["feedback"]):
        where = f"feedback[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("card"), str):
            problems.append(Issue("'card' (the card's uuid) is required", f"{where}.card"))
            continue
        if item.get("outcome") not in ("accepted", "overridden"):
            problems.append(Issue("'outcome' must be 'accepted' or 'overridden'", f"{where}.outcome"))
        if item.get("outcome") == "accepted" and not item.get("acceptedSuggestions"):
            problems.append(Issue("'acceptedSuggestions' is required for an accepted outcome",
                                  f"{where}.acceptedSuggestions"))
        try:
            if instant(item.get("outcomeTimestamp")) is None:
                raise ValueError
        except (ValueError, TypeError):
            problems.append(Issue("'outcomeTimestamp' is required, an ISO 8601 date-time", f"{where}.outcomeTimestamp"))
    if problems:
        raise FhirError(problems)
    return body["feedback"]


def record_feedback(uow, service_id: str, items: list[dict]) -> None:
    unknown = []
    for item in items:
        reason = item.get("overrideReason") or {}
        accepted = ", ".join(s.get("id", "") for s in item.get("acceptedSuggestions", []) if isinstance(s, dict))
        comment = reason.get("userComment") or (f"accepted suggestion {accepted}" if accepted else None)
        when = instant(item["outcomeTimestamp"]).astimezone(LOCAL)
        if issues.record_decision(uow, item["card"], item["outcome"], when=when, reason=reason.get("reason"),
                                  comment=comment, service=service_id) is None:
            unknown.append(item["card"])
    if unknown:
        raise FhirError(f"no card {', '.join(unknown)} was shown by service '{service_id}'", 404, code="not-found")


async def feedback(request: Request) -> Response:
    mark(request, "cds-feedback")
    service_id = request.path_params["id"]
    service.service(service_id)
    base = base_url(request)
    _authenticate(request, f"{base}/cds-services/{service_id}/feedback", f"{base}/cds-services/{service_id}")
    items = _feedback_items(await read_json(request))
    await in_session(request, lambda uow: record_feedback(uow, service_id, items), write=True)
    return Response(status_code=200)


ROUTES = [
    Route("/cds-services", discovery, methods=["GET"]),
    Route("/cds-services/{id}", invoke, methods=["POST"]),
    Route("/cds-services/{id}/feedback", feedback, methods=["POST"]),
]
