"""The analytics verbs of the `ihs` command, as plain functions (the CLI only parses options).

- `export(store, directory, ...)`: a Bulk Data export into a directory, with a progress bar;
- `materialize_views(store, view_files, database, ...)`: ViewDefinition JSON files into DuckDB/Parquet.
"""
from __future__ import annotations

from pathlib import Path

import orjson
from tqdm import tqdm

from ihs.analytics import bulk
from ihs.analytics.deidentify import pseudonym_key
from ihs.analytics.jobs import data_dir
from ihs.analytics.materialize import Materialized, materialize
from ihs.fhir.errors import FhirError
from ihs.fhir.indexing import date_bounds
from ihs.store.store import Store


def export(store: Store, directory: str | Path, *, level: str = "system", group: str | None = None,
           types: list[str] | None = None, since: str | None = None, type_filters: list[str] = (),
           deidentify: bool = False, show_progress: bool = True) -> bulk.ExportResult:
    """Export the store (or all patients, or a Group's) as one NDJSON file per type into `directory`;
    `deidentify` writes the research form (pseudonyms, shifted dates, no free text)."""
    since_micros = None
    if since:
        bounds = date_bounds(since)
        if bounds is None:
            raise FhirError(f"--since '{since}' is not an instant (e.g. 2024-01-01T00:00:00Z)")
        since_micros = bounds[0]
    request = bulk.ExportRequest(level=level, group_id=group, types=types or None, since=since_micros,
                                 type_filters=list(type_filters), deidentify=deidentify)
    bar = tqdm(total=0, unit="type", desc="export", disable=not show_progress)

    def progress(res_type: str, done: int, total: int, written: int) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(f"{res_type or 'done'}: {written} resources", refresh=False)
        bar.refresh()

    try:
        key = pseudonym_key(data_dir(store)) if deidentify else None
        return bulk.export(store, request, Path(directory), progress=progress, key=key)
    finally:
        bar.close()


def materialize_views(store: Store, view_files: list[str | Path], database: str | Path, *,
                      parquet_dir: str | Path | None = None, show_progress: bool = True) -> list[Materialized]:
    """Materialize the ViewDefinitions in JSON files into a DuckDB database (and Parquet files)."""
    definitions = [orjson.loads(Path(path).read_bytes()) for path in view_files]
    bar = tqdm(unit="resource", desc="views", disable=not show_progress)
    seen: dict[str, int] = {}

    def progress(table: str, resources: int) -> None:
        bar.set_postfix_str(table, refresh=False)
        bar.update(resources - seen.get(table, 0))
        seen[table] = resources

    try:
        return materialize(store, definitions, database, parquet_dir=Path(parquet_dir) if parquet_dir else None,
                           progress=progress)
    finally:
        bar.close()
