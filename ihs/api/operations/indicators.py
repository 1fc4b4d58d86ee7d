"""Resource indicators for the regional dashboard: `GET [base]/$indicators` and `GET [base]/$indicators/[name]`.

JSON (not FHIR) answers computed by SQL over SQL-on-FHIR views in an in-memory DuckDB warehouse
(ihs/analytics/indicators.py), refreshed incrementally from the store at most every
`IHS_INDICATORS_REFRESH` seconds (default 30). `from` and `to` (YYYY-MM) bound the months.
"""
from __future__ import annotations

import os

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.analytics.indicators import INDICATORS, VIEWS, compute
from ihs.analytics.warehouse import Warehouse
from ihs.api.http import base_url, mark, store_of

REFRESH_SECONDS = float(os.environ.get("IHS_INDICATORS_REFRESH", 30))


def warehouse_of(request: Request) -> Warehouse:
    """The app's indicator warehouse, built on first use over the app's store."""
    warehouse = getattr(request.app.state, "indicator_warehouse", None)
    if warehouse is None:
        warehouse = request.app.state.indicator_warehouse = Warehouse(store_of(request), VIEWS)
    return warehouse


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body, default=str), status, media_type="application/json")


async def list_indicators(request: Request) -> Response:
    mark(request, "indicators")
    base = base_url(request)
    return _json({"indicators": [{"name": i.name, "description": i.description, "by_month": i.month is not None,
                                  "url": f"{base}/$indicators/{i.name}"} for i in INDICATORS.values()]})


async def indicator(request: Request) -> Response:
    mark(request, "indicators")
    name = request.path_params["name"]
    start, end = request.query_params.get("from"), request.query_params.get("to")
    warehouse = warehouse_of(request)

    def work():
        warehouse.refresh_if_older(REFRESH_SECONDS)
        return compute(warehouse, name, start=start, end=end)
    rows = await run_in_threadpool(work)
    return _json({"indicator": name, "description": INDICATORS[name].description, "from": start, "to": end,
                  "rows": rows})


ROUTES = [
    Route("/$indicators", list_indicators, methods=["GET"]),
    Route("/$indicators/{name}", indicator, methods=["GET"]),
]
