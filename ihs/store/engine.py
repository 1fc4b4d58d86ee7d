"""Connecting to the database: SQLite (embedded default) or PostgreSQL, chosen by URL."""
from __future__ import annotations

import os
from pathlib import Path

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

DEFAULT_URL = "sqlite:///ihs-data/ihs.db"


def database_url(url: str | None = None) -> str:
    """The database to use: the argument, else IHS_DATABASE_URL, else the embedded SQLite file."""
    url = url or os.environ.get("IHS_DATABASE_URL") or DEFAULT_URL
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _json_passthrough(value) -> str:
    # Resource content is serialized once, by the store; strings pass through untouched.
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def make_engine(url: str | None = None, *, pool_size: int = 8) -> Engine:
    url = database_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_size=pool_size, max_overflow=16,
                               connect_args={"check_same_thread": False, "timeout": 60})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=16, pool_recycle=1800,
                         json_serializer=_json_passthrough, json_deserializer=orjson.loads)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take over transaction control from the sqlite3 module so writers can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the client hears 201, even if the machine loses power.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA cache_size=-65536")
        # Pages read through a memory map: a connection whose cache another connection's commit made
        # stale reads them again from the map, not by a copy per page.
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A writer takes the write lock up front; a reader that later wants to write would deadlock.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("ihs_write") else "BEGIN")
