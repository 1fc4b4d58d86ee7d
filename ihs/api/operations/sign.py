"""POST [base]/MedicationRequest/{id}/$sign: sign a draft prescription past the safety checks.

The body is optional: a Parameters resource with one `override` (parts `card`, `reason` as
valueCoding, `comment`) per critical card the prescriber goes ahead despite. Answers 200 with the
signed (active) MedicationRequest, or 422 with an OperationOutcome carrying every card.
"""
from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.api.http import fhir_response, in_session, mark
from ihs.cds.gate import overrides_from
from ihs.fhir.errors import FhirError
from ihs.workflows import prescribing


async def optional_parameters(request: Request) -> dict | None:
    """The request's Parameters body, or None when it has none."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FhirError(f"the body is not valid JSON: {exc}", code="structure") from exc
    if not isinstance(body, dict):
        raise FhirError("the body must be a FHIR resource")
    return body


def user_of(request: Request) -> str | None:
    """The FHIR reference of the authenticated user (request.state.principal), if any."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return None
    for name in ("fhir_user", "fhirUser"):
        value = principal.get(name) if isinstance(principal, dict) else getattr(principal, name, None)
        parts = str(value or "").rstrip("/").split("/")
        if len(parts) >= 2:
            return "/".join(parts[-2:])  # "Practitioner/123", also from an absolute fhirUser URL
    return None


async def sign(request: Request) -> Response:
    mark(request, "sign")
    parameters = await optional_parameters(request)
    if parameters is not None and parameters.get("resourceType") != "Parameters":
        raise FhirError("$sign takes a Parameters body with 'override' parameters, or no body", expression="Parameters")
    overrides = overrides_from(parameters)
    order_id, user = request.path_params["id"], user_of(request)
    outcome = await in_session(
        request, lambda uow: prescribing.sign(uow, order_id, overrides=overrides, user=user), write=True)
    if outcome.blocked:
        raise outcome.blocked
    return fhir_response(outcome.signed)


ROUTES = [Route("/MedicationRequest/{id}/$sign", sign, methods=["POST"])]
