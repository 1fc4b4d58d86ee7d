"""Analytics throughput over the 100-patient Synthea data set (38,970 resources) in a SQLite store.

    .venv/bin/python bench/analytics.py [--spark]

Loads the Synthea transaction bundles into a fresh SQLite store, then prints, one line each:
- `engine <view>: N rows/s (M resources/s)`: the compiled view over parsed resources in memory;
- `fhirpathpy <view>: N rows/s`: the same columns evaluated with fhirpathpy, the baseline;
- `materialize <view>: N rows/s end to end`: store -> view -> DuckDB table (ihs.analytics.materialize);
- `export system: N resources/s`: a Bulk Data export of every type to NDJSON;
- with --spark, `spark <view>: N rows in S s`: the view on Spark (local[2]) over the exported NDJSON.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.ingest import synthea_bundles  # noqa: E402
from tests.analytics.conftest import REGION_VIEWS  # noqa: E402

CONDITIONS = {"resourceType": "ViewDefinition", "name": "conditions", "resource": "Condition",
              "select": [{"column": [{"name": "id", "path": "getResourceKey()"},
                                     {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                                     {"name": "onset", "path": "onset.ofType(dateTime)", "type": "dateTime"},
                                     {"name": "clinical_status", "path": "clinicalStatus.coding.code.first()"}]},
                         {"forEach": "code.coding", "column": [{"name": "system", "path": "system"},
                                                              {"name": "code", "path": "code"},
                                                              {"name": "display", "path": "display"}]}]}
VIEWS = REGION_VIEWS + [CONDITIONS]


def load(store) -> int:
    import orjson

    from ihs.api import bundle

    count = 0
    for document in synthea_bundles():
        result = bundle.process(store, orjson.loads(document))
        count += len(result["entry"])
    return count


def engine(view, resources: list[dict]) -> tuple[int, float]:
    started = time.perf_counter()
    rows = sum(len(view.rows(r)) for r in resources)
    return rows, time.perf_counter() - started


def fhirpathpy_baseline(definition: dict, resources: list[dict]) -> tuple[int, float]:
    """The view's top-level column paths (outside forEach/unionAll) per resource with fhirpathpy, which
    lacks the key functions: getResourceKey() reads id, getReferenceKey(T) reads reference."""
    import fhirpathpy
    from fhirpathpy.models import models

    paths = [c["path"].replace("getResourceKey()", "id").replace("getReferenceKey(Patient)", "reference")
             for s in definition["select"] if "forEach" not in s and "unionAll" not in s
             for c in s.get("column", [])]
    compiled = [fhirpathpy.compile(p, models["r4"]) for p in paths]
    started = time.perf_counter()
    for resource in resources:
        for function in compiled:
            function(resource)
    return len(resources), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spark", action="store_true")
    args = parser.parse_args()
    from ihs.analytics.bulk import ExportRequest, export
    from ihs.analytics.materialize import materialize
    from ihs.analytics.source import store_resources
    from ihs.analytics.viewdef import compile_view
    from ihs.store.store import Store

    work = Path(tempfile.mkdtemp(prefix="ihs-bench-analytics-"))
    store = Store(f"sqlite:///{work}/ihs.db")
    store.create_schema()
    started = time.perf_counter()
    loaded = load(store)
    print(f"loaded {loaded} resources in {time.perf_counter() - started:.1f} s", flush=True)
    for definition in VIEWS:
        view = compile_view(definition)
        resources = [s.resource() for s in store_resources(store, view.resource)]
        rows, seconds = engine(view, resources)
        print(f"engine {view.name}: {rows / seconds:,.0f} rows/s ({len(resources) / seconds:,.0f} resources/s, "
              f"{rows} rows)", flush=True)
        count, seconds = fhirpathpy_baseline(definition, resources)
        print(f"fhirpathpy {view.name}: {count / seconds:,.0f} resources/s (top-level columns only)", flush=True)
    for result in materialize(store, VIEWS, work / "views.duckdb", parquet_dir=work / "parquet"):
        print(f"materialize {result.table}: {result.rows / result.seconds:,.0f} rows/s end to end "
              f"({result.resources} resources, {result.rows} rows, {result.seconds:.2f} s)", flush=True)
    started = time.perf_counter()
    exported = export(store, ExportRequest(), work / "export")
    seconds = time.perf_counter() - started
    total = sum(f.count for f in exported.files)
    print(f"export system: {total / seconds:,.0f} resources/s ({total} resources, {len(exported.files)} files, "
          f"{seconds:.1f} s)", flush=True)
    if args.spark:
        from ihs.analytics.spark import run_view, session
        spark = session("ihs-bench")
        files = {f.type: str(f.path) for f in exported.files}
        for definition in VIEWS:
            started = time.perf_counter()
            rows = run_view(spark, definition, [files[definition["resource"]]]).count()
            print(f"spark {definition['name']}: {rows} rows in {time.perf_counter() - started:.1f} s", flush=True)
        spark.stop()
    store.dispose()


if __name__ == "__main__":
    main()
