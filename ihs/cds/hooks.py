"""CDS Hooks 2.0 requests: what each hook's context holds, and the checks a request must pass.

Hooks: patient-view, order-select and order-sign (the CDS Hooks library), and medication-verify,
the library's pharmacist verification hook, whose context carries the signed order as `medication`
(its examples put it in `order`, alone or as `{"resource": ...}`; all three are read).
"""
from __future__ import annotations

import uuid

from ihs.fhir.errors import FhirError, Issue

CONTEXT = {  # required context fields and their JSON types
    "patient-view": {"userId": str, "patientId": str},
    "order-select": {"userId": str, "patientId": str, "selections": list, "draftOrders": dict},
    "order-sign": {"userId": str, "patientId": str, "draftOrders": dict},
    "medication-verify": {"userId": str, "patientId": str},
}
AUTHORIZATION = {"access_token": str, "token_type": str, "expires_in": int, "scope": str, "subject": str}


def _problem(message: str, expression: str) -> Issue:
    return Issue(message, expression, "invalid")


def check_request(body, hook: str) -> None:
    """Raise 400 with every way the request breaks the CDS Hooks 2.0 request rules."""
    if not isinstance(body, dict):
        raise FhirError("a CDS Hooks request is a JSON object")
    problems = []
    if body.get("hook") != hook:
        problems.append(_problem(f"'hook' must be '{hook}' for this service (got {body.get('hook')!r})", "hook"))
    instance = body.get("hookInstance")
    try:
        uuid.UUID(str(instance))
    except ValueError:
        problems.append(_problem("'hookInstance' is required and must be a UUID", "hookInstance"))
    authorization = body.get("fhirAuthorization")
    if "fhirAuthorization" in body:
        problems += _authorization(authorization)
        if not body.get("fhirServer"):
            problems.append(_problem("'fhirServer' is required when 'fhirAuthorization' is given", "fhirServer"))
    server = body.get("fhirServer")
    if "fhirServer" in body and not (isinstance(server, str) and server.startswith(("https://", "http://"))):
        problems.append(_problem("'fhirServer' must be the base URL of a FHIR server", "fhirServer"))
    if "prefetch" in body and not isinstance(body["prefetch"], dict):
        problems.append(_problem("'prefetch' must be an object of prefetch keys", "prefetch"))
    context = body.get("context")
    if not isinstance(context, dict):
        problems.append(_problem("'context' is required and must be an object", "context"))
    else:
        problems += _context(context, hook)
    if problems:
        raise FhirError(problems)


def _authorization(authorization) -> list[Issue]:
    if not isinstance(authorization, dict):
        return [_problem("'fhirAuthorization' must be an object", "fhirAuthorization")]
    problems = [_problem(f"'fhirAuthorization.{name}' is required ({kind.__name__})", f"fhirAuthorization.{name}")
                for name, kind in AUTHORIZATION.items()
                if not isinstance(authorization.get(name), kind) or authorization.get(name) in ("", None)]
    if authorization.get("token_type") not in (None, "Bearer") and isinstance(authorization.get("token_type"), str):
        problems.append(_problem("'fhirAuthorization.token_type' must be 'Bearer'", "fhirAuthorization.token_type"))
    return problems


def _context(context: dict, hook: str) -> list[Issue]:
    problems = [_problem(f"'context.{name}' is required ({kind.__name__})", f"context.{name}")
                for name, kind in CONTEXT[hook].items()
                if not isinstance(context.get(name), kind) or not context.get(name)]
    if problems:
        return problems
    if "draftOrders" in CONTEXT[hook] and context["draftOrders"].get("resourceType") != "Bundle":
        problems.append(_problem("'context.draftOrders' must be a FHIR Bundle", "context.draftOrders"))
    if hook == "order-select":
        present = {f"{r.get('resourceType')}/{r.get('id')}" for r in bundle_resources(context["draftOrders"])}
        for selection in context["selections"]:
            if selection not in present:
                problems.append(_problem(f"selection '{selection}' is not in context.draftOrders",
                                         "context.selections"))
    if hook == "medication-verify":
        order = verified_order(context)
        if not order or order.get("resourceType") != "MedicationRequest":
            problems.append(_problem("'context.medication' must be the MedicationRequest being verified",
                                     "context.medication"))
    return problems


def bundle_resources(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def draft_orders(context: dict) -> list[dict]:
    """The MedicationRequests among the hook's draft orders (other order types are not reviewed here)."""
    return [r for r in bundle_resources(context.get("draftOrders") or {}) if r.get("resourceType") == "MedicationRequest"]


def verified_order(context: dict) -> dict | None:
    """The signed MedicationRequest a medication-verify call is about."""
    order = context.get("medication") or context.get("order")
    if isinstance(order, dict) and isinstance(order.get("resource"), dict):
        order = order["resource"]
    return order if isinstance(order, dict) else None
