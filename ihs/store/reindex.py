"""Backfilling the search index for user-defined SearchParameters: `ihs reindex`, `POST /$reindex`.

A SearchParameter a user stores is indexed for resources written after it is registered, but the
resources already stored have no rows for it. Until `reindex` has backfilled them, the parameter's
`search_param_state` row is missing or `pending` (or names an older version), and a search on it
answers with a warning instead of a partial result (ihs/store/search/custom.py).
"""
from __future__ import annotations

import logging

import orjson
from sqlalchemy import delete, func, insert, select
from tqdm import tqdm

from ihs.fhir.errors import InvalidResource
from ihs.fhir.index_rows import IndexRows
from ihs.fhir.searchparams import registry
from ihs.store.schema import INDEX_COLUMNS, INDEX_TABLES, resources, search_param_state
from ihs.store.search.custom import is_ready, official_urls
from ihs.store.store import Store, UnitOfWork

log = logging.getLogger(__name__)
BATCH = 500


def stored_search_parameters(uow: UnitOfWork) -> list[tuple[int, int, dict]]:
    """(rid, version, resource) of every live, non-retired SearchParameter stored by users."""
    r = resources.c
    rows = uow.conn.execute(select(r.rid, r.version, r.content).where(
        r.res_type == "SearchParameter", r.deleted.is_(False)).order_by(r.rid)).all()
    found = []
    for rid, version, content in rows:
        resource = content if isinstance(content, dict) else orjson.loads(content)
        if resource.get("status") != "retired" and resource.get("url") not in official_urls():
            found.append((rid, version, resource))
    return found


def register_stored(store: Store) -> int:
    """Register every stored SearchParameter in this process's registry (call at start-up).

    Pending ones are registered too, so that resources this process writes get their rows while a
    backfill runs elsewhere; searches on them still warn until they are ready.
    """
    count = 0
    with store.session() as uow:
        for _, _, resource in stored_search_parameters(uow):
            try:
                registry().add(resource)
                count += 1
            except InvalidResource as exc:
                log.warning("SearchParameter/%s cannot be used: %s", resource.get("id"), exc)
    return count


def reindex(store: Store, *, progress: bool = True) -> dict:
    """Backfill the index rows of every stored SearchParameter that is not ready, then mark it ready.

    Returns a report: {"parameters": [{"id", "code", "types", "status"}], "resources": n, "rows": n,
    "errors": [...]}. Safe to run again; parameters already ready are skipped.
    """
    with store.session() as uow:
        todo = [(rid, version, res) for rid, version, res in stored_search_parameters(uow)
                if not is_ready(uow, rid, version)]
    report: dict = {"parameters": [], "resources": 0, "rows": 0, "errors": []}
    work: list[tuple[int, int, dict, list[str]]] = []
    for rid, version, resource in todo:
        try:
            registry().add(resource)
        except InvalidResource as exc:
            report["errors"].append(f"SearchParameter/{resource.get('id')}: {exc}")
            continue
        types = [t for t in registry().resource_types()
                 if (p := registry().get(t, resource["code"])) is not None and p.url == resource.get("url")]
        work.append((rid, version, resource, types))
    if not work:
        return report
    _set_state(store, [(rid, version) for rid, version, _, _ in work], "pending")
    codes_by_type: dict[str, set[str]] = {}
    for _, _, resource, types in work:
        for res_type in types:
            codes_by_type.setdefault(res_type, set()).add(resource["code"])
    with store.session() as uow:
        r = resources.c
        total = sum(uow.conn.execute(select(func.count()).select_from(resources).where(
            r.res_type == t, r.deleted.is_(False))).scalar_one() for t in codes_by_type)
    bar = tqdm(total=total, unit="resource", desc="reindex", disable=not progress)
    for res_type, codes in sorted(codes_by_type.items()):
        resources_done, rows_written = _backfill(store, res_type, codes, bar)
        report["resources"] += resources_done
        report["rows"] += rows_written
    bar.close()
    _set_state(store, [(rid, version) for rid, version, _, _ in work], "ready")
    report["parameters"] = [{"id": res.get("id"), "code": res["code"], "types": types, "status": "ready"}
                            for _, _, res, types in work]
    return report


def _backfill(store: Store, res_type: str, codes: set[str], bar) -> tuple[int, int]:
    """Rewrite the rows of `codes` for every live `res_type` resource, a batch per transaction."""
    names = codes | {c + ":identifier" for c in codes} | {c + ":of-type" for c in codes}
    r = resources.c
    last, done, written = 0, 0, 0
    while True:
        with store.session(write=True) as uow:
            batch = select(r.rid, r.content).where(r.res_type == res_type, r.deleted.is_(False), r.rid > last) \
                .order_by(r.rid).limit(BATCH)
            if store.dialect == "postgresql":
                batch = batch.with_for_update()  # a concurrent update must not interleave with the rewrite
            rows = uow.conn.execute(batch).all()
            if not rows:
                return done, written
            rids = [rid for rid, _ in rows]
            for table in INDEX_TABLES.values():
                uow.conn.execute(delete(table).where(table.c.rid.in_(rids), table.c.param.in_(sorted(names))))
            for rid, content in rows:
                stored = content if isinstance(content, dict) else orjson.loads(content)
                written += _insert(uow, rid, res_type, _rows_of(store, store.protection.open(stored), names))
            last, done = rids[-1], done + len(rows)
        bar.update(len(rows))


def _rows_of(store: Store, resource: dict, names: set[str]) -> IndexRows:
    """The index rows of `resource` that belong to the parameters `names` (the store's extraction, filtered).

    Protected identifier values are indexed as their keyed hash, as when the resource was written.
    """
    every = store.extract(store.protection.indexed(resource))
    rows = IndexRows()
    for table in IndexRows.TABLES:
        setattr(rows, table, [row for row in getattr(every, table) if row[0] in names])
    return rows


def _insert(uow: UnitOfWork, rid: int, res_type: str, rows: IndexRows) -> int:
    count = 0
    for name, values in rows.tables():
        records = [dict(zip(INDEX_COLUMNS[name], row), rid=rid, res_type=res_type)
                   for row in dict.fromkeys(values)]
        uow.conn.execute(insert(INDEX_TABLES[name]), records)
        count += len(records)
    return count


def _set_state(store: Store, items: list[tuple[int, int]], status: str) -> None:
    s = search_param_state.c
    with store.session(write=True) as uow:
        uow.conn.execute(delete(search_param_state).where(s.rid.in_([rid for rid, _ in items])))
        uow.conn.execute(insert(search_param_state), [
            {"rid": rid, "version": version, "status": status, "updated_at": store.clock.now()}
            for rid, version in items])
