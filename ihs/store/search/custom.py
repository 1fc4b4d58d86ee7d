"""Which search parameters a search may use: the official registry plus user-defined SearchParameters.

A SearchParameter resource a user stored becomes searchable once `ihs reindex` has backfilled its
index rows (the `search_param_state` row says `ready` for the stored version). Until then a search
naming it raises `Pending`, and the search answers with a warning rather than a partial result.
"""
from __future__ import annotations

from functools import cache

import orjson
from sqlalchemy import select

from ihs.fhir.definitions import search_parameters
from ihs.fhir.searchparams import SearchParam, registry
from ihs.store.schema import idx_token, resources, search_param_state
from ihs.store.search.query import Pending
from ihs.store.store import UnitOfWork


@cache
def official_urls() -> frozenset[str]:
    return frozenset(d["url"] for d in search_parameters())


def stored_definitions(uow: UnitOfWork, res_type: str, code: str) -> list[tuple[int, int, dict]]:
    """(rid, version, resource) of live, non-retired SearchParameters with `code` that apply to `res_type`."""
    r, t = resources.c, idx_token.c
    by_code = select(t.rid).where(t.res_type == "SearchParameter", t.param == "code", t.code == code)
    by_base = select(t.rid).where(t.res_type == "SearchParameter", t.param == "base",
                                  t.code.in_([res_type, "Resource", "DomainResource"]))
    rows = uow.conn.execute(select(r.rid, r.version, r.content).where(
        r.res_type == "SearchParameter", r.deleted.is_(False), r.rid.in_(by_code), r.rid.in_(by_base))).all()
    found = []
    for rid, version, content in rows:
        resource = orjson.loads(content) if isinstance(content, str) else content
        if resource.get("status") != "retired":
            found.append((rid, version, resource))
    return found


def is_ready(uow: UnitOfWork, rid: int, version: int) -> bool:
    s = search_param_state.c
    row = uow.conn.execute(select(s.version, s.status).where(s.rid == rid)).first()
    return row is not None and row.status == "ready" and row.version == version


class ParamLookup:
    """(resource type, code) -> SearchParam for one search, consulting stored SearchParameters once each."""

    def __init__(self, uow: UnitOfWork):
        self.uow = uow
        self.registry = registry()
        self._seen: dict[tuple[str, str], SearchParam | None] = {}

    def __call__(self, res_type: str, code: str) -> SearchParam | None:
        param = self.registry.get(res_type, code)
        if param is not None and param.url in official_urls():
            return param
        key = (res_type, code)
        if key not in self._seen:
            self._seen[key] = self._user_defined(res_type, code, param)
        return self._seen[key]

    def _user_defined(self, res_type: str, code: str, param: SearchParam | None) -> SearchParam | None:
        stored = stored_definitions(self.uow, res_type, code)
        if not stored:
            return param  # registered by the application itself, or unknown
        rid, version, resource = max(stored, key=lambda s: s[0])
        if not is_ready(self.uow, rid, version):
            raise Pending(code)
        signature = orjson.dumps({k: resource.get(k) for k in _DEFINING}, option=orjson.OPT_SORT_KEYS)
        if param is None or _registered.get((res_type, code)) != signature:
            self.registry.add(resource)
            _registered[(res_type, code)] = signature
        return self.registry.get(res_type, code)


_DEFINING = ("url", "code", "base", "type", "expression", "target", "component", "modifier", "comparator")
# (resource type, code) -> the definition this process registered, so a changed one is registered again
_registered: dict[tuple[str, str], bytes] = {}
