"""A DuckDB warehouse of views kept current from the store: each refresh reads only what changed.

Each view becomes a table with a leading `resource_key` column (the resource's id). The first refresh
reads every resource of the view's type; later ones ask the store's history which resources of
that type changed (or were deleted) since the last high-water mark, delete their rows and insert
rows from their current versions. The mark trails the newest change by `OVERLAP`, so a write whose
timestamp is earlier than one already seen (another worker's clock, a slow commit) is still read;
re-reading a resource is harmless, its rows are replaced. The database is in memory by default
(one per API worker; DuckDB allows one writing process per file).
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import duckdb
import orjson

from ihs.analytics.source import store_resources
from ihs.analytics.tables import write_duckdb
from ihs.analytics.viewdef import View, compile_view
from ihs.store.store import Store

OVERLAP = 5_000_000  # microseconds re-read at every refresh
_HISTORY_PAGE = 1000


@dataclass
class Refreshed:
    table: str
    full: bool
    resources: int  # resources (re)read
    rows: int  # rows in the table afterwards


def keyed(definition: dict) -> dict:
    """The view with a leading `resource_key` column holding each row's resource id."""
    key = {"column": [{"name": "resource_key", "path": "getResourceKey()", "type": "id"}]}
    return dict(definition, select=[key] + list(definition["select"]))


class Warehouse:
    """Views over one store in a DuckDB database, refreshed incrementally."""

    def __init__(self, store: Store, definitions: list[dict], database: str = ":memory:"):
        self.store = store
        self.views = [compile_view(keyed(d)) for d in definitions]
        self.connection = duckdb.connect(database)
        self.lock = threading.Lock()
        self.refreshed_at = 0.0
        self.connection.execute("CREATE TABLE IF NOT EXISTS _ihs_views (name VARCHAR PRIMARY KEY, "
                                "fingerprint VARCHAR, mark BIGINT)")

    def refresh(self) -> list[Refreshed]:
        """Bring every table up to date with the store."""
        with self.lock:
            results = [self._refresh(view) for view in self.views]
            self.refreshed_at = time.monotonic()
            return results

    def refresh_if_older(self, seconds: float) -> None:
        if time.monotonic() - self.refreshed_at >= seconds or not self.refreshed_at:
            self.refresh()

    def query(self, sql: str, parameters: list | None = None) -> list[dict]:
        """Rows of a SQL query over the tables, as dicts."""
        with self.lock:
            cursor = self.connection.cursor()
            result = cursor.execute(sql, parameters or [])
            names = [d[0] for d in result.description]
            return [dict(zip(names, row)) for row in result.fetchall()]

    # -- internals -----------------------------------------------------------------------------

    def _refresh(self, view: View) -> Refreshed:
        name = view.name or view.resource.lower()
        fingerprint = hashlib.sha256(orjson.dumps(view.definition, option=orjson.OPT_SORT_KEYS)).hexdigest()
        found = self.connection.execute("SELECT fingerprint, mark FROM _ihs_views WHERE name = ?", [name]).fetchall()
        state = found[0] if found else None
        started = time.time_ns() // 1000
        if state is None or state[0] != fingerprint:
            counted = [0]

            def every():
                for stored in store_resources(self.store, view.resource):
                    counted[0] += 1
                    yield stored.resource()
            rows = write_duckdb(view, every(), self.connection, name)
            self._mark(name, fingerprint, started)
            return Refreshed(name, True, counted[0], rows)
        since = state[1] - OVERLAP
        changed = self._changed_ids(view.resource, since)
        quoted = '"' + name.replace('"', '""') + '"'
        current = [s.resource() for s in store_resources(self.store, view.resource, since=since)]
        if changed:
            self.connection.execute(f"DELETE FROM {quoted} WHERE resource_key IN (SELECT unnest(?))", [sorted(changed)])
        if current:
            write_duckdb(view, current, self.connection, "_ihs_delta")
            self.connection.execute(f"INSERT INTO {quoted} SELECT * FROM _ihs_delta")
            self.connection.execute("DROP TABLE _ihs_delta")
        self._mark(name, fingerprint, started)
        rows = self.connection.execute(f"SELECT count(*) FROM {quoted}").fetchall()[0][0]
        return Refreshed(name, False, len(current), rows)

    def _changed_ids(self, res_type: str, since: int) -> set[str]:
        """Ids of `res_type` resources with a version (an update or a deletion) at or after `since`."""
        found, offset = set(), 0
        while True:
            with self.store.session() as uow:
                versions, total = uow.history(res_type, since=since, count=_HISTORY_PAGE, offset=offset)
            found.update(v.id for v in versions)
            offset += len(versions)
            if not versions or offset >= total:
                return found

    def _mark(self, name: str, fingerprint: str, mark: int) -> None:
        self.connection.execute("INSERT OR REPLACE INTO _ihs_views VALUES (?, ?, ?)", [name, fingerprint, mark])
