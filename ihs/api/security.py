"""Security on every request: who is calling (SMART bearer token), may they (the access policy),
and the record of it (the audit chain).

The middleware authenticates every request except the endpoints the FHIR and SMART
specifications make public, and puts the caller in `request.state.principal` and in a context
variable, so the REST interactions (direct or inside a Bundle) ask the one access policy without
passing the caller around. Code that runs without an HTTP caller (the CLI, event handlers) has no
principal and is trusted.
"""
from __future__ import annotations

import threading
from contextvars import ContextVar
from weakref import WeakKeyDictionary

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request

from ihs.api.http import fhir_response
from ihs.audit import audit_event, from_principal, outcome_of, record
from ihs.audit.writer import AuditWriter
from ihs.auth import policy
from ihs.auth.break_glass import patients_in_query, record_use
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
# The patients whose records the policy let this request see, for its AuditEvent. A set the
# middleware creates: the policy runs on worker threads, whose context is a copy of the request's.
accessed_patients: ContextVar[set | None] = ContextVar("ihs_accessed_patients", default=None)
# Of those, the patients this request reached only by break-the-glass (a claim or an open grant): their
# grants are recorded and the request is audited with purpose of use BTG. Also a set the middleware creates.
break_glass_used: ContextVar[set | None] = ContextVar("ihs_break_glass_used", default=None)


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
        patients = accessed_patients.set(set())
        emergency = break_glass_used.set(set())
        try:
            await self.app(scope, receive, send)
        finally:
            break_glass_used.reset(emergency)
            accessed_patients.reset(patients)
            current_principal.reset(token)


def check(uow, action: str, res_type: str, resource: dict | None = None) -> None:
    """Raise 403 (or 405) unless the current caller may do `action` on this resource."""
    principal = current_principal.get()
    if principal is None:
        return
    decision = policy.decide(principal, action, res_type, resource, uow).check()
    seen = accessed_patients.get()
    if decision.patients and seen is not None:
        seen.update(decision.patients)
    if decision.break_glass:
        _used_break_glass(uow, principal, decision.patients)


def may_read(uow, res_type: str, resource: dict) -> bool:
    """Whether the current caller may read `resource` (the records an operation gathers one by one);
    what it may read counts as accessed, as for `check`."""
    try:
        check(uow, "read", res_type, resource)
    except FhirError:
        return False
    return True


def _used_break_glass(uow, principal: Principal, patients) -> None:
    """Note the patients reached only by break-the-glass. A write unit of work records their grants
    with the change; `record_access` records those of reads and searches."""
    used, seen = break_glass_used.get(), accessed_patients.get()
    if used is not None:
        used.update(patients)
    if seen is not None:
        seen.update(patients)
    if uow.conn.get_execution_options().get("ihs_write"):
        for patient in sorted(patients):
            record_use(uow, principal, patient, policy.default_policy().config)


def check_search(uow, res_type: str | None) -> None:
    """Raise 403 unless the current caller may search `res_type` (None: the system) at all.

    What the search then shows is narrowed inside its SQL by `search_restriction`.
    """
    principal = current_principal.get()
    if principal is None:
        return
    policy.decide(principal, "search-type" if res_type else "search-system", res_type, None, uow).check()


def search_restriction(uow, res_type: str | None, query=(), compartment: tuple[str, str] | None = None):
    """What the current caller's search of `res_type` (None: several types) may show, for the search
    engine to AND into its SQL: None when the caller may see everything (no condition at all), else
    the policy's restriction for each resource type the search or its includes reach.

    Under a break-the-glass claim the patients the query names (`patient=`, `Patient/x/...`) open.
    Each type's restriction, when asked for, notes the patients it shows only by break-the-glass (a
    claim or an open grant): those the query names, or all of them when it names no patient. The
    access to them is granted whether or not anything of theirs matches, so it is recorded either
    way (`break_glass.record_use`, and purpose of use BTG in the search's AuditEvent).
    """
    principal = current_principal.get()
    if principal is None:
        return None
    named = patients_in_query(res_type, list(query), compartment)
    opened = named if principal.break_glass else ()
    by_type = {}

    def restriction_of(resource_type: str | None):
        if resource_type not in by_type:
            found = by_type[resource_type] = policy.search_restriction(principal, resource_type, uow, patients=opened)
            emergency = policy.break_glass_patients(found, resource_type)
            if named:
                emergency &= frozenset(named)
            if emergency:
                _used_break_glass(uow, principal, emergency)
        return by_type[resource_type]

    # includes of other types may be narrower than an unrestricted searched type
    if _unrestricted(restriction_of(res_type)) and _unrestricted(restriction_of(None)):
        return None
    return restriction_of


def reach_record(uow, patient_id: str) -> None:
    """Note an operation over Patient/`patient_id`'s whole record ($everything) as the search
    `Patient/<id>/*` is noted: under break-the-glass, whether or not any of its resources needs it."""
    search_restriction(uow, None, (), ("Patient", patient_id))


def _unrestricted(restriction) -> bool:
    return restriction.everything and restriction.types is None and not restriction.criteria


def stamp_author(resource: dict, current: dict | None = None) -> None:
    """Tag a new or changed resource with the caller's institution (the policy reads it back)."""
    principal = current_principal.get()
    if principal is not None:
        policy.stamp_author(principal, resource, current)


def audit_write(uow, action: str, reference: str) -> None:
    """Record a change in its own unit of work, so the AuditEvent commits with the change."""
    principal = current_principal.get()
    if principal is not None and auditing_entries.get():
        record(uow, audit_event(action, resource=reference,
                                **from_principal(principal, break_glass=bool(break_glass_used.get()))), checked=True)


_writers: WeakKeyDictionary = WeakKeyDictionary()
_writers_lock = threading.Lock()


def audit_writer(store) -> AuditWriter:
    """The process's group-committing writer of read AuditEvents on `store`."""
    writer = _writers.get(store)
    if writer is None:
        with _writers_lock:
            writer = _writers.get(store) or _writers.setdefault(store, AuditWriter(store))
    return writer


def close_audit_writer(store) -> None:
    """Commit and file what `store`'s writer holds and end its threads (shutdown, before emptying a store)."""
    writer = _writers.pop(store, None)
    if writer is not None:
        writer.close()


def record_access(store, action: str, *, status: int = 200, reference: str | None = None,
                  query: str | None = None, interaction: str | None = None) -> None:
    """Record a read, search or refused access; returns once its AuditEvent is committed.

    Runs on the request's worker thread, right after the read's unit of work (`in_session`'s
    `then`); concurrent requests share the commit (ihs/audit/writer.py). An access that cannot be
    recorded is not answered: 503, whatever the request would have returned.
    """
    principal = current_principal.get()
    if principal is None:
        return
    break_glass = _record_break_glass(store, principal, status)
    if query:
        query = store.protection.masked_query(query)  # resident ID numbers never reach the audit trail
    event = audit_event(action, outcome=outcome_of(status), resource=reference, query=query, interaction=interaction,
                        patients=sorted(accessed_patients.get() or ()),
                        **from_principal(principal, break_glass=break_glass))
    try:
        audit_writer(store).write(event, checked=True)
    except Exception as exc:
        raise FhirError("the access could not be written to the audit trail, so it is not answered; retry later",
                        503, code="transient") from exc


async def audit_access(store, action: str, **access) -> None:
    """`record_access` for a caller on the event loop."""
    if current_principal.get() is not None:
        await run_in_threadpool(record_access, store, action, **access)


def _record_break_glass(store, principal: Principal, status: int) -> bool:
    """Record the break-the-glass grants (and their notifications) of an answered access; whether it used any.

    Before the access's AuditEvent, in a write unit of work of their own (reads and searches have
    none); a grant already open is found, not opened again, so nobody is notified twice.
    """
    used = sorted(break_glass_used.get() or ())
    if used and status < 400:
        try:
            with store.session(write=True) as uow:
                for patient in used:
                    record_use(uow, principal, patient, policy.default_policy().config)
        except Exception as exc:
            raise FhirError("the emergency access could not be recorded, so it is not answered; retry later",
                            503, code="transient") from exc
    return bool(used)
