"""POST [base]/Patient/$merge (R5 definition, served as a custom operation) and POST [base]/Patient/$unmerge.

Both take Parameters (source-patient or source-patient-identifier, target-patient or
target-patient-identifier; $merge also result-patient and preview) and answer Parameters with
input, outcome and result (ihs/mpi/merge.py).
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.api.http import fhir_response, in_session, mark, read_json
from ihs.mpi import merge as patient_merge


def _agent(request: Request) -> dict | None:
    """The caller as the Provenance agent, when the request is authenticated."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return None
    who = getattr(principal, "fhir_user", None) or getattr(principal, "subject", None)
    if isinstance(who, str) and "/" in who:
        return {"reference": who}
    return {"display": str(who or getattr(principal, "client_id", "authenticated caller"))}


def _authorize(request: Request, uow, wanted: patient_merge.MergeRequest) -> None:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return
    from ihs.auth import policy

    for res_id in (wanted.source, wanted.target):
        stored = uow.current("Patient", res_id) if res_id else None
        if stored is not None and not stored.deleted:
            policy.decide(principal, "update", "Patient", stored.resource(), uow).check()


async def merge(request: Request) -> Response:
    mark(request, "merge")
    wanted = patient_merge.parse_request(await read_json(request))
    agent = _agent(request)

    def work(uow):
        _authorize(request, uow, wanted)
        return patient_merge.merge(uow, wanted, agent=agent)

    result = await in_session(request, work, write=not wanted.preview)
    return fhir_response(result.parameters)


async def unmerge(request: Request) -> Response:
    mark(request, "unmerge")
    wanted = patient_merge.parse_request(await read_json(request))
    agent = _agent(request)

    def work(uow):
        _authorize(request, uow, wanted)
        return patient_merge.unmerge(uow, wanted, agent=agent)

    result = await in_session(request, work, write=True)
    return fhir_response(result.parameters)


ROUTES = [Route("/Patient/$merge", merge, methods=["POST"]),
          Route("/Patient/$unmerge", unmerge, methods=["POST"])]
