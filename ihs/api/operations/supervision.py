"""GET [base]/supervision/prescribing: prescribing-supervision indicators for the regulator's dashboard.

Query: `start` and `end` (dates, inclusive; default the last 30 days), optional `facility`
(Organization/id) and `prescriber` (Practitioner/id). Answers JSON: per facility and per
prescriber, alerts by severity and check, override counts and rate, prescriptions and the
antibiotic prescription rate (ihs/cds/supervision.py).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.api.http import in_session, mark
from ihs.cds import supervision
from ihs.cds.medication import LOCAL
from ihs.fhir.errors import FhirError

DEFAULT_DAYS = 30


def _date(request: Request, name: str, default: date) -> date:
    value = request.query_params.get(name)
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise FhirError(f"'{name}' must be a date (YYYY-MM-DD), not {value!r}", expression=name) from exc


async def prescribing(request: Request) -> Response:
    mark(request, "supervision-prescribing")
    end = _date(request, "end", datetime.now(LOCAL).date())
    start = _date(request, "start", end - timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        raise FhirError("'start' must not be after 'end'", expression="start")
    facility, prescriber = request.query_params.get("facility"), request.query_params.get("prescriber")
    body = await in_session(request, lambda uow: supervision.indicators(
        uow, start, end, facility=facility, prescriber=prescriber), write=False)
    return Response(orjson.dumps(body), media_type="application/json")


ROUTES = [Route("/supervision/prescribing", prescribing, methods=["GET"])]
