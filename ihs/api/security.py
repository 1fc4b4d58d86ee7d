"""Security on every request: who is calling (SMART bearer token), may they (the access policy),
and the record of it (the audit chain).

The middleware authenticates every request except the endpoints the FHIR and SMART
specifications make public, and puts the caller in `request.state.principal` and in a context
variable, so the REST interactions (direct or inside a Bundle) ask the one access policy without
passing the caller around. Code that runs without an HTTP caller (the CLI, event handlers) has no
principal and is trusted.
"""
from __future__ import annotations

from contextvars import ContextVar

from starlette.datastructures import Headers
from starlette.requests import Request

from ihs.api.http import fhir_response
from ihs.audit import audit_event, from_principal, outcome_of, record
from ihs.audit.writer import AuditWriter
from ihs.auth import policy
from ihs.auth.errors import Unauthorized
from ihs.auth.principal import Principal
from ihs.fhir.errors import FhirError

# Public by the specifications: the CapabilityStatement, SMART discovery and the authorization
# server itself; CDS Hooks authenticates its clients with its own signed JWTs. /healthz and
# /metrics carry no patient data, for load balancers and Prometheus.
PUBLIC_PREFIXES = ("/metadata", "/.well-known/", "/auth/", "/cds-services", "/healthz", "/metrics")

current_principal: ContextVar[Principal | None] = ContextVar("ihs_principal", default=None)
# A batch or transaction is audited as one event (its entries are listed in the Bundle itself).
auditing_entries: ContextVar[bool] = ContextVar("ihs_auditing_entries", default=True)


class AuthenticationMiddleware:
    """Pure ASGI: 401 with an OperationOutcome unless the request carries a valid bearer token."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        from ihs.api.operations.smart import authority_of

        try:
            principal = authority_of(Request(scope)).authenticate(Headers(scope=scope))
        except Unauthorized as exc:
            response = fhir_response({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "login", "diagnostics": str(exc)}]}, 401,
                getattr(exc, "headers", None) or {"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        scope.setdefault("state", {})["principal"] = principal
        token = current_principal.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            current_principal.reset(token)


def check(uow, action: str, res_type: str, resource: dict | None = None) -> None:
    """Raise 403 (or 405) unless the current caller may do `action` on this resource."""
    principal = current_principal.get()
    if principal is None:
        return
    policy.decide(principal, action, res_type, resource, uow).check()


def check_search(uow, res_type: str | None) -> None:
    """Searches are answered only where the policy lets the caller see every resource of the type.

    Roles whose view is narrower (a patient, staff limited by treatment relationship and Consent)
    read resources by id until the policy is compiled into the search query itself, so that no
    search can reveal that a hidden resource exists.
    """
    principal = current_principal.get()
    if principal is None:
        return
    policy.decide(principal, "search-type" if res_type else "search-system", res_type, None, uow).check()
    if not policy.search_restriction(principal, res_type, uow).everything:
        raise FhirError(f"searching {res_type or 'the system'} as {', '.join(sorted(principal.roles))} is not "
                        "available yet: read the resources you may see by id", 403, code="forbidden")


def stamp_author(resource: dict, current: dict | None = None) -> None:
    """Tag a new or changed resource with the caller's institution (the policy reads it back)."""
    principal = current_principal.get()
    if principal is not None:
        policy.stamp_author(principal, resource, current)


def audit_write(uow, action: str, reference: str) -> None:
    """Record a change in its own unit of work, so the AuditEvent commits with the change."""
    principal = current_principal.get()
    if principal is not None and auditing_entries.get():
        record(uow, audit_event(action, resource=reference, **from_principal(principal)), checked=True)


_writers: dict[int, AuditWriter] = {}


def audit_writer(store) -> AuditWriter:
    writer = _writers.get(id(store))
    if writer is None:
        writer = _writers[id(store)] = AuditWriter(store, max_wait=0.02)
    return writer


def audit_access(store, action: str, *, status: int = 200, reference: str | None = None,
                 query: str | None = None, interaction: str | None = None) -> None:
    """Record a read, search or refused access: queued, and on the chain within a few milliseconds.

    Waiting for the commit would cost every read a disk round trip; changes, which must not be
    answered before they are durable, record their events in their own transaction instead.
    """
    principal = current_principal.get()
    if principal is None:
        return
    audit_writer(store).submit(audit_event(action, outcome=outcome_of(status), resource=reference, query=query,
                                           interaction=interaction, **from_principal(principal)), checked=True)
