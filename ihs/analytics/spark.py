"""The same ViewDefinitions on Apache Spark, over exported NDJSON: the path past one machine.

`run_view(spark, definition, paths)` reads NDJSON files (a Bulk Data export, local or on a
cluster file system) as text, runs the compiled view on each partition in Spark's Python
workers, and returns a DataFrame with the view's columns and SQL types. The rows are the rows
`View.rows` gives on one machine, because they are computed by the same code.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable

import orjson

from ihs.analytics.tables import converter
from ihs.analytics.viewdef import Column, View, compile_view

_SPARK_TYPES = {"boolean": "BooleanType", "integer": "LongType", "positiveInt": "LongType",
                "unsignedInt": "LongType", "decimal": "DoubleType"}


def session(app_name: str = "ihs-views", master: str = "local[2]"):
    """A Spark session whose Python workers run this interpreter (so they import ihs)."""
    from pyspark.sql import SparkSession

    # the workers must start this interpreter (a virtualenv's python), not the one on PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return (SparkSession.builder.appName(app_name).master(master)
            .config("spark.pyspark.python", sys.executable)
            .config("spark.pyspark.driver.python", sys.executable)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .getOrCreate())


def _spark_type(column: Column):
    from pyspark.sql import types

    base = getattr(types, _SPARK_TYPES.get(column.type, "StringType"))()
    return types.ArrayType(base) if column.collection else base


def schema(view: View):
    from pyspark.sql import types

    return types.StructType([types.StructField(c.name, _spark_type(c), True) for c in view.columns])


def _rows_of_partition(definition: dict):
    def rows(lines: Iterable[str]):
        view = compile_view(definition)  # compiled once per partition, in the worker
        converters = [converter(c) for c in view.columns]
        for line in lines:
            if line.strip():
                for row in view.rows(orjson.loads(line)):
                    yield tuple(convert(value) for convert, value in zip(converters, row))
    return rows


def run_view(spark, definition: dict, paths: list[str]):
    """A DataFrame of the view's rows over the NDJSON files at `paths`."""
    view = compile_view(definition)  # a bad view fails here, on the driver, with the element named
    lines = spark.sparkContext.textFile(",".join(str(p) for p in paths))
    return spark.createDataFrame(lines.mapPartitions(_rows_of_partition(definition)), schema(view))
