"""POST [base]/Patient/$match: the master patient index's candidates for a Patient (ihs/mpi/match.py)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.api.http import base_url, fhir_response, in_session, mark, read_json, store_of
from ihs.mpi import match as mpi_match
from ihs.mpi.index import index_for


def _permitted(request: Request, uow, matches):
    """The matches the caller may see, after checking they may run $match at all."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return matches
    from ihs.auth import policy

    policy.decide(principal, "$match", "Patient", uow=uow).check()
    return [(person, resource) for person, resource in matches
            if policy.decide(principal, "read", "Patient", resource, uow)]


async def match(request: Request) -> Response:
    mark(request, "match")
    wanted = mpi_match.parse_request(await read_json(request))
    store = store_of(request)

    def work(uow):
        return _permitted(request, uow, mpi_match.find_matches(uow, index_for(store), wanted))

    found = await in_session(request, work, write=False)
    return fhir_response(mpi_match.match_bundle(found, base_url(request)))


ROUTES = [Route("/Patient/$match", match, methods=["POST"])]
