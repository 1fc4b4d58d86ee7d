"""GET [base]/Patient/[id]/$everything: a person's records from every institution (ihs/mpi/everything.py).

Parameters (R4 Patient-everything): `start` and `end` (care dates), `_since`, `_type`, and
`_count`/`_offset` for paging. With an authenticated caller,
only what the access policy lets them read is answered.
"""
from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.api.http import base_url, fhir_response, in_session, mark
from ihs.fhir.errors import FhirError
from ihs.mpi import everything as record

DEFAULT_COUNT = 500


def _permitted(request: Request, uow, patient_id: str, resources):
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return resources
    from ihs.auth import policy

    patient = uow.current("Patient", patient_id)
    policy.decide(principal, "$everything", "Patient", patient.resource(), uow).check()
    return [s for s in resources if policy.decide(principal, "read", s.type, s.resource(), uow)]


def _number(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise FhirError(f"{name} must be a non-negative integer", expression=name)
    return int(value)


async def everything(request: Request) -> Response:
    mark(request, "everything")
    patient_id = request.path_params["id"]
    params = request.query_params
    count, offset = max(1, _number(request, "_count", DEFAULT_COUNT)), _number(request, "_offset", 0)

    def work(uow):
        found = record.everything(uow, patient_id, types=params.get("_type"), since=params.get("_since"),
                                  start=params.get("start"), end=params.get("end"))
        return _permitted(request, uow, patient_id, found)

    found = await in_session(request, work, write=False)
    base = base_url(request)
    page = found[offset:offset + count]
    kept = [(k, v) for k, v in params.multi_items() if k not in ("_count", "_offset")]
    path = f"{base}/Patient/{patient_id}/$everything"
    links = [{"relation": "self", "url": f"{path}?{urlencode(kept + [('_count', count), ('_offset', offset)])}"}]
    if offset + count < len(found):
        links.append({"relation": "next",
                      "url": f"{path}?{urlencode(kept + [('_count', count), ('_offset', offset + count)])}"})
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(found), "link": links}
    if page:
        bundle["entry"] = [{"fullUrl": f"{base}/{s.type}/{s.id}", "resource": s.resource(),
                            "search": {"mode": "match"}} for s in page]
    return fhir_response(bundle)


ROUTES = [Route("/Patient/{id}/$everything", everything, methods=["GET"])]
