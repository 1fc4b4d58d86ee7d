"""Views materialized into DuckDB and Parquet hold exactly the rows the engine computes."""
from __future__ import annotations

import duckdb
import pyarrow.parquet as pq

from ihs.analytics.materialize import materialize
from ihs.analytics.source import store_resources
from ihs.analytics.viewdef import compile_view


def engine_rows(store, definition) -> list[tuple]:
    view = compile_view(definition)
    return [row for stored in store_resources(store, view.resource) for row in view.rows(stored.resource())]


def _plain(value):
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)  # a decimal column holds 92 as 92.0
    return value


def comparable(rows) -> list[tuple]:
    """Rows as sorted tuples of plain values, for comparing tables regardless of row order and number type."""
    return sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)


def test_duckdb_tables_and_parquet_files_match_the_engine(region_store, region_views, tmp_path):
    results = materialize(region_store, region_views, tmp_path / "views.duckdb", parquet_dir=tmp_path / "parquet")
    assert [r.table for r in results] == ["patients", "observations", "encounters"]
    assert all(r.rows > 0 for r in results)
    with duckdb.connect(str(tmp_path / "views.duckdb")) as connection:
        for definition, result in zip(region_views, results):
            expected = comparable(engine_rows(region_store, definition))
            stored = connection.execute(f'SELECT * FROM "{result.table}"').fetchall()
            assert comparable(stored) == expected
            parquet = pq.read_table(tmp_path / "parquet" / f"{result.table}.parquet")
            assert comparable(zip(*[parquet.column(n).to_pylist() for n in parquet.column_names])) == expected


def test_column_types_become_sql_types(region_store, region_views, tmp_path):
    materialize(region_store, region_views[:1], tmp_path / "views.duckdb")
    with duckdb.connect(str(tmp_path / "views.duckdb")) as connection:
        types = dict(connection.execute("SELECT column_name, data_type FROM information_schema.columns "
                                        "WHERE table_name = 'patients'").fetchall())
    assert types == {"id": "VARCHAR", "gender": "VARCHAR", "birth_date": "VARCHAR", "deceased": "BOOLEAN",
                     "family": "VARCHAR", "given": "VARCHAR[]"}


def test_rows_of_a_view_can_be_aggregated_in_sql(region_store, region_views, tmp_path):
    materialize(region_store, region_views[:1], tmp_path / "views.duckdb")
    with duckdb.connect(str(tmp_path / "views.duckdb")) as connection:
        counts = dict(connection.execute("SELECT gender, count(*) FROM patients GROUP BY gender").fetchall())
    assert sum(counts.values()) == 30 and set(counts) <= {"male", "female", "other", "unknown"}
