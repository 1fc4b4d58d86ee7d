"""Differentially private aggregates for regulators and researchers: `POST [base]/$dp-aggregate`.

The body (JSON) names a view (`viewReference`: Library/[id], or an inline `view`), the `groupBy`
columns, `epsilon` (and optionally `delta`, `mechanism` laplace|gaussian, `minCount`,
`contributions`). The cost is charged to the caller's and the dataset's privacy budgets
(ihs/analytics/budget.py) before anything is computed; the answer holds the released cells (noisy
patient counts, small cells suppressed), what was spent and what remains.
"""
from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ihs.analytics.budget import charge
from ihs.analytics.library import load_view
from ihs.analytics.privacy import AggregateQuery, cost, release
from ihs.analytics.run import view_resources
from ihs.api.http import in_session, mark, read_json, store_of
from ihs.fhir.errors import FhirError
from ihs.fhir.fhirpath_compile import parse_reference


def _caller(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return "anonymous"
    return getattr(principal, "subject", None) or getattr(principal, "client_id", None) or "anonymous"


def _number(body: dict, name: str, default=None, kind=float):
    value = body.get(name, default)
    if value is None:
        raise FhirError(f"'{name}' is required", expression=name)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise FhirError(f"'{name}' must be a number", expression=name) from None


async def dp_aggregate(request: Request) -> Response:
    mark(request, "dp-aggregate")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise FhirError("the body is a JSON object naming view, groupBy and epsilon")
    view = body.get("view")
    if view is None and isinstance(body.get("viewReference"), str):
        res_type, library_id = parse_reference(body["viewReference"])
        if res_type != "Library":
            raise FhirError("viewReference names a Library", expression="viewReference")
        view = await in_session(request, lambda uow: load_view(uow, library_id), write=False)
    if not isinstance(view, dict):
        raise FhirError("name the view: 'view' (a ViewDefinition) or 'viewReference' (Library/[id])",
                        expression="view")
    group_by = body.get("groupBy")
    query = AggregateQuery(view=view, group_by=group_by if isinstance(group_by, list) else [group_by],
                           epsilon=_number(body, "epsilon"), delta=_number(body, "delta", 1e-6),
                           mechanism=str(body.get("mechanism", "laplace")),
                           min_count=_number(body, "minCount", 10, int),
                           contributions=_number(body, "contributions", 1, int))
    compiled = query.compiled()
    store, user = store_of(request), _caller(request)

    def work():
        ledgers = charge(store, user, compiled.resource, *cost(query))
        result = release(query, view_resources(store, compiled))
        return result, ledgers
    result, ledgers = await run_in_threadpool(work)
    return Response(orjson.dumps({
        "dataset": compiled.resource, "mechanism": query.mechanism, "unit": "patient",
        "spent": {"epsilon": result.epsilon, "delta": result.delta},
        "noise": {"scale": result.scale, "threshold": result.threshold},
        "remaining": {who: ledger.remaining() for who, ledger in ledgers.items()},
        "rows": result.rows}), media_type="application/json")


ROUTES = [Route("/$dp-aggregate", dp_aggregate, methods=["POST"])]
