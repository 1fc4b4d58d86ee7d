"""Syndromic surveillance over HTTP.

- GET  /$syndromic-counts?syndrome=ili&start=2024-01-01&end=2024-01-31[&by=district][&district=..]
  [&facility=..][&age-band=..][&sex=..]: a Bundle of daily MeasureReports;
- POST /$syndromic-detect?date=2024-01-31[&syndrome=ili][&method=..][&alpha=0.01]: assess the day,
  raise Flag + Communication for each alarm, answer a Bundle of the alerts;
- POST /$syndromic-rebuild: recount every Encounter (the counts are derived data);
- POST /Condition/{id}/$case-report: the notifiable-disease case report Task (201 new, 200 existing).
"""
from __future__ import annotations

from datetime import date

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from ihs.api.http import base_url, fhir_response, in_session, mark, store_of
from ihs.fhir.errors import FhirError
from ihs.surveillance import casereport, counts, monitor, reports
from ihs.surveillance.detection import DEFAULT_METHOD, METHODS
from ihs.surveillance.syndromes import syndromes

FILTERS = {"district": "district", "facility": "facility", "age-band": "age_band", "sex": "sex"}


def _date(request: Request, name: str, required: bool = True) -> date | None:
    value = request.query_params.get(name)
    if not value:
        if required:
            raise FhirError(f"parameter '{name}' is required (a date, YYYY-MM-DD)", code="required")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FhirError(f"parameter '{name}': '{value}' is not a date (YYYY-MM-DD)") from None


def _syndrome(request: Request, required: bool = True) -> str | None:
    code = request.query_params.get("syndrome")
    if code is None and not required:
        return None
    if code not in syndromes():
        raise FhirError(f"parameter 'syndrome': use one of {', '.join(syndromes())}", code="code-invalid")
    return code


async def syndromic_counts(request: Request):
    mark(request, "syndromic-counts")
    code, start, end = _syndrome(request), _date(request, "start"), _date(request, "end")
    by = request.query_params.get("by")
    if by is not None and by.replace("-", "_") not in counts.DIMENSIONS:
        raise FhirError(f"parameter 'by': use one of {', '.join(FILTERS)}")
    filters = {column: request.query_params[name] for name, column in FILTERS.items() if name in request.query_params}
    try:
        body = await run_in_threadpool(reports.daily_reports, store_of(request), code, start, end,
                                       by=by.replace("-", "_") if by else None, **filters)
    except ValueError as exc:
        raise FhirError(str(exc)) from exc
    return fhir_response(body)


async def syndromic_detect(request: Request):
    mark(request, "syndromic-detect")
    day = _date(request, "date")
    code = _syndrome(request, required=False)
    method = request.query_params.get("method", DEFAULT_METHOD)
    if method not in METHODS:
        raise FhirError(f"parameter 'method': use one of {', '.join(METHODS)}", code="code-invalid")
    try:
        alpha = float(request.query_params.get("alpha", "0.01"))
    except ValueError:
        alpha = -1.0
    if not 0 < alpha < 0.5:
        raise FhirError("parameter 'alpha' is a probability between 0 and 0.5")
    raised = await run_in_threadpool(monitor.detect, store_of(request), day, syndrome_codes=[code] if code else None,
                                     method=method, alpha=alpha)
    entries = [{"resource": stored.resource()} for _, flag, note in raised for stored in (flag, note) if stored]
    return fhir_response({"resourceType": "Bundle", "type": "collection", "entry": entries})


async def syndromic_rebuild(request: Request):
    mark(request, "syndromic-rebuild")
    visits = await run_in_threadpool(counts.rebuild, store_of(request))
    return fhir_response({"resourceType": "Parameters", "parameter": [{"name": "visits", "valueInteger": visits}]})


async def case_report(request: Request):
    mark(request, "case-report")
    condition_id = request.path_params["id"]
    principal = getattr(request.state, "principal", None)
    requester = getattr(principal, "reference", None)
    base = base_url(request)

    def work(uow):
        before = casereport.existing_report(uow, condition_id)
        task = before or casereport.report(uow, condition_id, base=base,
                                           requester={"reference": requester} if requester else None)
        return task, before is None

    task, created = await in_session(request, work, write=True)
    headers = {"Location": f"{base}/Task/{task.id}/_history/{task.version}"} if created else None
    return fhir_response(task.content, 201 if created else 200, headers)


ROUTES = [
    Route("/$syndromic-counts", syndromic_counts, methods=["GET"]),
    Route("/$syndromic-detect", syndromic_detect, methods=["POST"]),
    Route("/$syndromic-rebuild", syndromic_rebuild, methods=["POST"]),
    Route("/Condition/{id}/$case-report", case_report, methods=["POST"]),
]
