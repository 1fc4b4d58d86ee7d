"""AuditEvent resources in the shape of IHE Basic Audit Log Patterns (BALP).

`audit_event(action, ...)` answers who (the user, the client application, their organizations),
what (the resource, the query, the patients concerned), when (`recorded`), from where (the
client's network address), the outcome, and the purpose of use (BTG for break-the-glass).
Actions: read, vread, history, search, create, update, patch, delete, operation, export, login,
login-failed, logout and break-glass.
"""
from __future__ import annotations

import base64
import time

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ROLE_SYSTEM = "https://ihs.example.org/fhir/CodeSystem/role"

# action -> (type coding, subtype coding or None, AuditEvent.action)
ACTIONS = {
    "read": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "read", "read"), "R"),
    "vread": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "vread", "vread"), "R"),
    "history": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "history-instance", "history-instance"), "R"),
    "search": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "search-type", "search-type"), "E"),
    "create": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "create", "create"), "C"),
    "update": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "update", "update"), "U"),
    "patch": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "patch", "patch"), "U"),
    "delete": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "delete", "delete"), "D"),
    "operation": ((AUDIT_TYPE, "rest", "RESTful Operation"), (RESTFUL, "operation", "operation"), "E"),
    "export": ((DCM, "110106", "Export"), None, "R"),
    "login": ((DCM, "110114", "User Authentication"), (DCM, "110122", "Login"), "E"),
    "login-failed": ((DCM, "110114", "User Authentication"), (DCM, "110122", "Login"), "E"),
    "logout": ((DCM, "110114", "User Authentication"), (DCM, "110123", "Logout"), "E"),
    "break-glass": ((DCM, "110113", "Security Alert"), None, "E"),
}
WRITES = {"C", "U", "D"}
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = "0", "4", "8", "12"


def _coding(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


_second: tuple[int, str] = (-1, "")  # the last whole second formatted (every audited request asks), swapped whole


def now_instant() -> str:
    """The current instant in UTC with microseconds, as FHIR writes it."""
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    global _second
    cached = _second
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{micros:06d}Z"


def outcome_of(status: int) -> str:
    """The AuditEvent outcome of an HTTP status: 0 success, 4 a refused or bad request, 8 a server failure."""
    return SUCCESS if status < 400 else MINOR_FAILURE if status < 500 else SERIOUS_FAILURE


def audit_event(action: str, *, outcome: str = SUCCESS, outcome_desc: str | None = None,
                recorded: str | None = None, user: str | None = None, user_name: str | None = None,
                client_id: str | None = None, roles=(), organizations=(), address: str | None = None,
                server: str | None = None, purpose=(), resource: str | None = None, patients=(),
                query: str | None = None, operation: str | None = None, interaction: str | None = None) -> dict:
    """An AuditEvent (not yet stored: see `ihs.audit.record`).

    `user` is the fhirUser reference (or None), `user_name` the account, `client_id` the application,
    `address` the client's IP, `server` the FHIR base URL, `purpose` v3-ActReason codes (e.g. "BTG",
    "TREAT"), `resource` a `Type/id` reference, `patients` Patient ids the access concerns, `query`
    the query string of a search, `operation` an operation name ($everything), `interaction` a
    FHIR interaction name more precise than the action (search-system, history-type, ...).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; one of {', '.join(ACTIONS)}")
    type_, subtype, verb = ACTIONS[action]
    event = {"resourceType": "AuditEvent", "type": _coding(*type_)}
    if interaction and type_[1] == "rest":
        subtype = (RESTFUL, interaction, interaction)
    subtypes = [_coding(*subtype)] if subtype else []
    if operation:
        subtypes.append({"code": operation, "display": operation})
    if subtypes:
        event["subtype"] = subtypes
    event["action"] = verb
    event["recorded"] = recorded or now_instant()
    event["outcome"] = outcome
    if outcome_desc:
        event["outcomeDesc"] = outcome_desc[:1000]
    reasons = [{"coding": [_coding(ACT_REASON, code)]} for code in purpose]
    if reasons:
        event["purposeOfEvent"] = reasons
    event["agent"] = _agents(verb, user, user_name, client_id, roles, organizations, address, server, reasons)
    event["source"] = {"observer": {"display": server or "IHS"},
                       "type": [_coding(SOURCE_TYPE, "4", "Application Server")]}
    entities = _entities(resource, patients, query)
    if entities:
        event["entity"] = entities
    return event


def _agents(verb, user, user_name, client_id, roles, organizations, address, server, reasons) -> list[dict]:
    person = {"type": {"coding": [_coding(PARTICIPATION, "AUT" if verb in WRITES else "IRCP")]}, "requestor": True}
    if user:
        person["who"] = {"reference": user}
    if user_name:
        person["altId"] = user_name
        person["name"] = user_name
    if roles:
        person["role"] = [{"coding": [_coding(ROLE_SYSTEM, r)]} for r in sorted(roles)]
    if address:
        person["network"] = {"address": address, "type": "2"}
    if reasons:
        person["purposeOfUse"] = reasons
    agents = [person]
    if client_id:
        app = {"type": {"coding": [_coding(DCM, "110153", "Source Role ID")]}, "requestor": False,
               "who": {"identifier": {"system": "https://ihs.example.org/fhir/sid/client", "value": client_id}}}
        if address:
            app["network"] = {"address": address, "type": "2"}
        agents.append(app)
    for organization in organizations[:1]:
        agents.append({"type": {"coding": [_coding(PARTICIPATION, "PROV", "healthcare provider")]},
                       "requestor": False, "who": {"reference": organization}})
    if server:
        agents.append({"type": {"coding": [_coding(DCM, "110152", "Destination Role ID")]}, "requestor": False,
                       "who": {"display": server}, "network": {"address": server, "type": "5"}})
    return agents


def _entities(resource, patients, query) -> list[dict]:
    entities = [{"what": {"reference": f"Patient/{p}"}, "type": _coding(ENTITY_TYPE, "1", "Person"),
                 "role": _coding(OBJECT_ROLE, "1", "Patient")} for p in sorted(set(patients))]
    if resource and not (resource.startswith("Patient/") and resource[8:] in set(patients)):
        entities.append({"what": {"reference": resource}, "type": _coding(ENTITY_TYPE, "2", "System Object"),
                         "role": _coding(OBJECT_ROLE, "4", "Domain Resource")})
    if query is not None:
        entities.append({"type": _coding(ENTITY_TYPE, "2", "System Object"),
                         "role": _coding(OBJECT_ROLE, "24", "Query"),
                         "query": base64.b64encode(query.encode()).decode()})
    return entities


def from_principal(principal, *, break_glass: bool = False) -> dict:
    """`audit_event` keyword arguments describing an authenticated caller (an ihs.auth Principal).

    `break_glass`: the access reached a record only by emergency access (purpose of use BTG); a
    caller claiming it for an access that needed no claim is not marked.
    """
    purpose = ("BTG",) if break_glass else ()
    return {"user": principal.fhir_user, "user_name": principal.subject, "client_id": principal.client_id,
            "roles": tuple(principal.roles), "organizations": tuple(principal.organizations), "purpose": purpose}
