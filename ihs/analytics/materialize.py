"""Views materialized from the store into DuckDB (the embedded analytics database) and Parquet.

`materialize(store, definitions, database)` rebuilds one DuckDB table per view (named by the
view's `name`, else its resource type) from the current resources; `parquet_dir` also writes
each table as `<name>.parquet` with DuckDB's own writer. Nothing is installed or downloaded:
DuckDB runs with the extensions its wheel has built in.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb

from ihs.analytics.source import store_resources
from ihs.analytics.tables import write_duckdb
from ihs.analytics.viewdef import View, compile_view
from ihs.store.store import Store


@dataclass
class Materialized:
    table: str
    rows: int
    resources: int
    seconds: float


def table_name(view: View) -> str:
    return view.name or view.resource.lower()


def materialize(store: Store, definitions: list[dict], database: str | Path, *, parquet_dir: Path | None = None,
                progress: Callable[[str, int], None] | None = None) -> list[Materialized]:
    """Rebuild a DuckDB table (and optionally a Parquet file) per view; what each took."""
    views = [compile_view(d) for d in definitions]
    results = []
    with duckdb.connect(str(database)) as connection:
        for view in views:
            started, counted = time.perf_counter(), [0]

            def resources(view=view, counted=counted):
                for stored in store_resources(store, view.resource):
                    counted[0] += 1
                    if progress and counted[0] % 1000 == 0:
                        progress(table_name(view), counted[0])
                    yield stored.resource()
            rows = write_duckdb(view, resources(), connection, table_name(view))
            if parquet_dir is not None:
                parquet_dir.mkdir(parents=True, exist_ok=True)
                target = str(parquet_dir / f"{table_name(view)}.parquet").replace("'", "''")
                connection.execute(f"COPY \"{table_name(view)}\" TO '{target}' (FORMAT parquet)")
            results.append(Materialized(table_name(view), rows, counted[0], time.perf_counter() - started))
    return results
