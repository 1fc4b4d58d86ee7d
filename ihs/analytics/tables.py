"""View rows as tables: Arrow batches, DuckDB tables, Parquet files, and CSV/JSON/NDJSON text.

Column types come from the ViewDefinition (or what its path compiles to): booleans, integers and
decimals keep their SQL types; everything else is text (dates as their ISO strings, so a partial
date like 2010-10 survives); `collection: true` columns are lists. A value that is not of its
column's type (an object in a string column) is written as JSON text rather than dropped.
"""
from __future__ import annotations

import csv
import io
from typing import Callable, Iterable, Iterator

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ihs.analytics.viewdef import Column, View, ViewError

BATCH = 10_000
_ARROW = {"boolean": pa.bool_(), "integer": pa.int64(), "positiveInt": pa.int64(), "unsignedInt": pa.int64(),
          "decimal": pa.float64()}
FORMATS = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv",
           "parquet": "application/vnd.apache.parquet"}
_FORMAT_ALIASES = {"application/json": "json", "application/fhir+json": "json", "application/x-ndjson": "ndjson",
                   "application/ndjson": "ndjson", "ndjson": "ndjson", "text/csv": "csv", "csv": "csv",
                   "application/vnd.apache.parquet": "parquet", "application/parquet": "parquet",
                   "parquet": "parquet", "json": "json"}


def output_format(requested: str | None, default: str = "ndjson") -> str:
    """The output format named by `_format` (a short name or a media type)."""
    if not requested:
        return default
    found = _FORMAT_ALIASES.get(requested.split(";")[0].strip().lower())
    if not found:
        raise ViewError(f"_format '{requested}' is not supported; use one of {', '.join(FORMATS)}", "_format")
    return found


def arrow_type(column: Column) -> pa.DataType:
    base = _ARROW.get(column.type, pa.string())
    return pa.list_(base) if column.collection else base


def arrow_schema(view: View) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in view.columns])


def converter(column: Column) -> Callable:
    """A function giving a value (or list) of the column's SQL type; ViewError on a value of another type."""
    kind = column.type if column.type in _ARROW else "string"

    def one(value):
        if value is None:
            return None
        if kind == "boolean":
            if isinstance(value, bool):
                return value
        elif kind == "decimal":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif kind in _ARROW:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif isinstance(value, str):
            return value
        else:
            return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else _text(value)
        raise ViewError(f"column '{column.name}' is declared {column.type} but found {value!r}")
    if column.collection:
        return lambda values: [one(v) for v in values]
    return one


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def row_batches(view: View, resources: Iterable[dict], size: int = BATCH) -> Iterator[pa.RecordBatch]:
    """The view's rows over `resources` as Arrow record batches of up to `size` rows."""
    schema = arrow_schema(view)
    converters = [converter(c) for c in view.columns]
    width = len(converters)
    pending: list[tuple] = []
    for resource in resources:
        pending.extend(view.rows(resource))
        if len(pending) >= size:
            yield _batch(schema, converters, width, pending)
            pending = []
    if pending:
        yield _batch(schema, converters, width, pending)


def _batch(schema, converters, width, rows) -> pa.RecordBatch:
    arrays = [pa.array([convert(row[i]) for row in rows], type=schema.field(i).type)
              for i, convert in zip(range(width), converters)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def write_parquet(view: View, resources: Iterable[dict], path) -> int:
    """Write the view's rows to a Parquet file; the number of rows."""
    count = 0
    with pq.ParquetWriter(path, arrow_schema(view)) as writer:
        for batch in row_batches(view, resources):
            writer.write_batch(batch)
            count += batch.num_rows
    return count


def write_duckdb(view: View, resources: Iterable[dict], connection, table: str) -> int:
    """Replace `table` in a DuckDB connection with the view's rows; the number of rows."""
    quoted = '"' + table.replace('"', '""') + '"'
    empty = pa.Table.from_batches([], schema=arrow_schema(view))
    connection.register("ihs_view_batch", empty)
    connection.execute(f"CREATE OR REPLACE TABLE {quoted} AS SELECT * FROM ihs_view_batch")
    count = 0
    for batch in row_batches(view, resources):
        connection.register("ihs_view_batch", pa.Table.from_batches([batch]))
        connection.execute(f"INSERT INTO {quoted} SELECT * FROM ihs_view_batch")
        count += batch.num_rows
    connection.unregister("ihs_view_batch")
    return count


# ---------------------------------------------------------------------------- text formats

def render(view: View, rows: Iterable[tuple], fmt: str, *, header: bool = True) -> Iterator[bytes]:
    """The rows in `fmt` (json, ndjson, csv, parquet) as chunks of bytes, for a streamed response."""
    names = view.column_names
    if fmt == "ndjson":
        for row in rows:
            yield orjson.dumps(dict(zip(names, row))) + b"\n"
    elif fmt == "json":
        yield b"["
        for i, row in enumerate(rows):
            yield (b"," if i else b"") + orjson.dumps(dict(zip(names, row)))
        yield b"]"
    elif fmt == "csv":
        yield from _csv(names, rows, header)
    elif fmt == "parquet":
        yield _parquet(view, rows)
    else:
        raise ViewError(f"unknown output format '{fmt}'", "_format")


def _csv(names: list[str], rows: Iterable[tuple], header: bool) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(names)
    for i, row in enumerate(rows, 1):
        writer.writerow(["" if v is None else orjson.dumps(v).decode() if isinstance(v, (list, dict)) else _text(v)
                         for v in row])
        if i % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _parquet(view: View, rows: Iterable[tuple]) -> bytes:
    schema = arrow_schema(view)
    converters = [converter(c) for c in view.columns]
    rows = list(rows)
    sink = io.BytesIO()
    table = pa.Table.from_batches([_batch(schema, converters, len(converters), rows)] if rows else [], schema=schema)
    pq.write_table(table, sink)
    return sink.getvalue()
