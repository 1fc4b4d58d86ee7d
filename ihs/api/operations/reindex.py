"""POST /$reindex: index existing resources for SearchParameters added since (`ihs reindex` over HTTP)."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from ihs.api.http import fhir_response, mark, store_of
from ihs.store.reindex import reindex


async def run_reindex(request):
    mark(request, "reindex")
    report = await run_in_threadpool(reindex, store_of(request), progress=False)
    issues = [{"severity": "information", "code": "informational",
               "diagnostics": f"SearchParameter/{p['id']} ({p['code']}) is {p['status']} on {', '.join(p['types'])}"}
              for p in report["parameters"]]
    issues += [{"severity": "error", "code": "invalid", "diagnostics": e} for e in report["errors"]]
    issues.append({"severity": "information", "code": "informational",
                   "diagnostics": f"{report['resources']} resources reindexed, {report['rows']} index rows written"})
    return fhir_response({"resourceType": "OperationOutcome", "issue": issues})


ROUTES = [Route("/$reindex", run_reindex, methods=["POST"])]
