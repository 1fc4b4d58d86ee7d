"""The history interaction at instance, type and system level, as a history Bundle.

Type and system history show only the versions of resources the caller's search restriction
shows now (ihs/store/search/visibility.py); instance history is decided like a read of the
resource (ihs/api/interactions.py `check_history`).
"""
from __future__ import annotations

from urllib.parse import urlencode

from ihs.api import security
from ihs.fhir.errors import FhirError, NotFound
from ihs.fhir.indexing import date_bounds
from ihs.store.search.visibility import history_condition
from ihs.store.store import UnitOfWork, instant

DEFAULT_COUNT = 50
MAX_COUNT = 1000
METHOD_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "200 OK"}


def bundle(uow: UnitOfWork, params, base: str, res_type: str | None = None, res_id: str | None = None) -> dict:
    """Versions newest first, paged by `_count` and `_page`, filtered by `_since` and `_at`."""
    count = _int_param(params, "_count", DEFAULT_COUNT, 1, MAX_COUNT)
    page = _int_param(params, "_page", 1, 1, 10**9)
    since = parse_instant_param("_since", params["_since"]) if params.get("_since") else None
    at = parse_instant_param("_at", params["_at"]) if params.get("_at") else None
    if res_id is not None and uow.current(res_type, res_id) is None:
        raise NotFound(f"{res_type}/{res_id} does not exist")
    shown = None
    if res_id is None:
        restriction = security.search_restriction(uow, res_type)
        shown = history_condition(uow, restriction, res_type) if restriction is not None else None
    versions, total = uow.history(res_type, res_id, since=since, at=at, count=count, offset=(page - 1) * count,
                                  condition=shown)
    path = "/".join(p for p in (base, res_type, res_id, "_history") if p)
    kept = {k: v for k, v in params.items() if k in ("_since", "_at", "_count")}
    links = [{"relation": "self", "url": f"{path}?{urlencode({**kept, '_page': page})}"}]
    if page * count < total:
        links.append({"relation": "next", "url": f"{path}?{urlencode({**kept, '_page': page + 1})}"})
    if page > 1:
        links.append({"relation": "previous", "url": f"{path}?{urlencode({**kept, '_page': page - 1})}"})
    entries = []
    for v in versions:
        entry = {"fullUrl": f"{base}/{v.type}/{v.id}"}
        if v.content:
            entry["resource"] = v.resource()
        entry["request"] = {"method": v.method, "url": f"{v.type}/{v.id}" if v.method != "POST" else v.type}
        entry["response"] = {"status": METHOD_STATUS.get(v.method, "200 OK"),
                             "etag": v.etag, "lastModified": instant(v.last_updated)}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "history", "total": total, "link": links, "entry": entries}


def parse_instant_param(name: str, value: str) -> int:
    """The start of a date or instant given as a query parameter, or a 400 naming the parameter."""
    bounds = date_bounds(value)
    if bounds is None:
        raise FhirError(f"{name} must be a FHIR instant such as 2024-01-31T08:00:00Z, not '{value}'", expression=name)
    return bounds[0]


def _int_param(params, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise FhirError(f"{name} must be a whole number, not '{value}'", expression=name)
    return max(low, min(int(value), high))
