"""POST [base]/MedicationDispense/$dispense: record a dispense, only against a valid prescription.

The body is the MedicationDispense, or a Parameters resource with it in `dispense` and one
`override` (parts `card`, `reason`, `comment`) per critical card of the pharmacist's audit the
pharmacist goes ahead despite. Answers 201 with the stored MedicationDispense, or 422.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.api.http import base_url, fhir_response, in_session, mark, read_json
from ihs.api.operations.sign import user_of
from ihs.cds.gate import overrides_from
from ihs.workflows import dispensing


async def dispense(request: Request) -> Response:
    mark(request, "dispense")
    body = await read_json(request)
    overrides = []
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        overrides = overrides_from(body)
        body = next((p.get("resource") for p in body.get("parameter", []) if p.get("name") == "dispense"), None)
    user = user_of(request)
    outcome = await in_session(request, lambda uow: dispensing.dispense(uow, body, overrides=overrides, user=user),
                               write=True)
    if outcome.blocked:
        raise outcome.blocked
    stored = outcome.dispense
    return fhir_response(stored, 201, {"Location": f"{base_url(request)}/MedicationDispense/{stored['id']}/_history/"
                                                   f"{stored['meta']['versionId']}"})


ROUTES = [Route("/MedicationDispense/$dispense", dispense, methods=["POST"])]
