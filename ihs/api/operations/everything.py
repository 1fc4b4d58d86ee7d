"""GET [base]/Patient/[id]/$everything: a person's records from every institution (ihs/mpi/everything.py).

Parameters (R4 Patient-everything): `start` and `end` (care dates), `_since`, `_type`, and
`_count`/`_offset` for paging. With an authenticated caller, only what the access policy lets them
read is answered, and the access is audited (an `operation` AuditEvent naming the patients whose
records it answered; purpose of use BTG, and the grant recorded, when break-the-glass opened them).
"""
from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.api import security
from ihs.api.http import base_url, fhir_response, in_session, mark, store_of
from ihs.fhir.errors import FhirError
from ihs.mpi import everything as record

DEFAULT_COUNT = 500


def _permitted(uow, patient_id: str, resources):
    patient = uow.current("Patient", patient_id)
    security.check(uow, "$everything", "Patient", patient.resource())
    security.reach_record(uow, patient_id)
    return [s for s in resources if security.may_read(uow, s.type, s.resource())]


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
        return _permitted(uow, patient_id, found)

    found = await in_session(request, work, write=False, then=lambda: security.record_access(
        store_of(request), "operation", reference=f"Patient/{patient_id}", query=request.url.query or None,
        interaction="operation"))
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
