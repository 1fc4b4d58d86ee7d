"""The same views on Apache Spark (local mode) over a Bulk Data export give the engine's rows exactly."""
from __future__ import annotations

import shutil

import pytest

from ihs.analytics.bulk import ExportRequest, export
from ihs.analytics.spark import run_view, session
from tests.analytics.test_materialize import comparable, engine_rows

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (java on PATH)")


@pytest.fixture(scope="module")
def spark():
    spark = session("ihs-test")
    yield spark
    spark.stop()


def test_views_on_spark_over_exported_ndjson_match_the_engine(region_store, region_views, spark, tmp_path):
    result = export(region_store, ExportRequest(types=["Patient", "Observation", "Encounter"]), tmp_path)
    files = {f.type: str(f.path) for f in result.files}
    for definition in region_views:
        frame = run_view(spark, definition, [files[definition["resource"]]])
        assert frame.columns == [c["name"] for s in _selects(definition) for c in s]
        assert comparable(tuple(row) for row in frame.collect()) == comparable(engine_rows(region_store, definition))


def test_a_view_runs_over_every_file_of_an_export(region_store, region_views, spark, tmp_path):
    result = export(region_store, ExportRequest(types=["Patient", "Observation"]), tmp_path)
    frame = run_view(spark, region_views[0], [str(f.path) for f in result.files])
    assert frame.count() == 30  # the Observation lines give no Patient rows


def _selects(definition: dict) -> list[list[dict]]:
    """Column lists in view order (own columns, nested selects, the first unionAll branch)."""
    found = []

    def walk(select):
        found.append(select.get("column", []))
        for nested in select.get("select", []):
            walk(nested)
        if select.get("unionAll"):
            walk(select["unionAll"][0])
    for select in definition["select"]:
        walk(select)
    return found
