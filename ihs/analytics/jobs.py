"""Bulk export jobs: kicked off by the API, run on a background thread, polled, downloaded, cancelled.

A job lives in the platform's database, so any API worker on any machine answers its status
polls, serves its files and cancels it, whichever worker accepted the kick-off:

- `bulk_export_jobs`: one row per job with the request, its owner, its state and progress, and
  a lease: the worker running the job renews `lease_until` from a heartbeat thread. When a poll
  finds an unfinished job whose lease has run out (its worker died or was restarted), that worker
  claims the job and runs it again from the start, at most MAX_RUNS times in all.
- `bulk_export_files`: the NDJSON output in chunks, written when the export is done (it is first
  written to a temporary folder of the running worker) and streamed back from any worker.

Every write of a run names the run (`runner`): a run that lost its lease to another worker notices
that its writes no longer land and stops, so a job is never finished twice.

The request in the row carries the caller's claims (`ExportRequest.caller`), not a request context:
whichever worker runs or resumes the job asks the access policy for that caller (ihs/analytics/bulk.py).
A job completes in one transaction with its AuditEvents naming the patients it exported
(ihs/analytics/export_audit.py): a run that lost its lease records nothing.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import orjson
from sqlalchemy import (BigInteger, Boolean, Column, Integer, LargeBinary, MetaData, String, Table, Text, delete,
                        false, insert, select, true, update)

from ihs.analytics.bulk import Cancelled, ExportRequest, export
from ihs.analytics.deidentify import pseudonym_key
from ihs.analytics.export_audit import completion_events
from ihs.audit.chain import record_many
from ihs.fhir.errors import FhirError, NotFound
from ihs.store.store import Store

log = logging.getLogger("ihs.analytics.export")
_JOB_ID = "0123456789abcdef"
CHUNK = 1 << 20  # bytes of output per row of bulk_export_files
LEASE_SECONDS = 60.0
MAX_RUNS = 3

metadata = MetaData()
export_jobs = Table(
    "bulk_export_jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(256)),
    Column("status", String(16), nullable=False),  # in-progress, complete, error
    Column("cancelled", Boolean, nullable=False, default=False),
    Column("request", Text, nullable=False),  # the ExportRequest as JSON
    Column("request_url", Text, nullable=False),
    Column("progress", String(256), nullable=False),
    Column("transaction_time", BigInteger),
    Column("files", Text),  # JSON list of {type, path, count, deleted}
    Column("error", Text),
    Column("status_code", Integer),
    Column("created", BigInteger, nullable=False),
    Column("runner", String(32), nullable=False),  # the run that holds the lease
    Column("lease_until", BigInteger, nullable=False),  # microseconds since the epoch
    Column("runs", Integer, nullable=False),
)
export_files = Table(
    "bulk_export_files", metadata,
    Column("job_id", String(32), primary_key=True),
    Column("runner", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
_ready: weakref.WeakSet = weakref.WeakSet()  # engines whose tables exist
_schema_lock = threading.Lock()


class LostLease(Exception):
    """Another worker took over the job: this run stops without touching it."""


def data_dir(store: Store) -> Path:
    """Where the platform keeps files: IHS_DATA_DIR, else beside the SQLite database, else ./ihs-data."""
    configured = os.environ.get("IHS_DATA_DIR")
    if configured:
        return Path(configured)
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path("ihs-data").resolve()


def ensure_schema(store: Store) -> None:
    """Create the job tables on first use (once per engine)."""
    with _schema_lock:
        if store.engine not in _ready:
            metadata.create_all(store.engine)
            _ready.add(store.engine)


def _now() -> int:
    return time.time_ns() // 1000


class ExportJobs:
    """The export jobs of one store, as one API worker sees and runs them."""

    def __init__(self, store: Store, *, lease_seconds: float = LEASE_SECONDS):
        self.store = store
        self.lease = int(lease_seconds * 1e6)
        self.threads: dict[str, threading.Thread] = {}
        ensure_schema(store)

    def start(self, request: ExportRequest, *, request_url: str, owner: str | None) -> str:
        """Check the request, record the job and run it on a thread of this worker; the job id."""
        request.check()
        job_id, runner = uuid.uuid4().hex, uuid.uuid4().hex
        with self._writer() as conn, conn.begin():
            conn.execute(insert(export_jobs).values(
                id=job_id, owner=owner, status="in-progress", cancelled=False,
                request=orjson.dumps(asdict(request)).decode(), request_url=request_url, progress="queued",
                created=_now(), runner=runner, lease_until=_now() + self.lease, runs=1))
        self._launch(job_id, runner, request)
        return job_id

    def state(self, job_id: str, owner: str | None) -> dict:
        """The job's state; NotFound for an unknown, cancelled or someone else's job.

        A job left unfinished by a worker that stopped is taken over here and run again."""
        row = self._row(job_id, owner)
        if row["status"] == "in-progress" and row["lease_until"] < _now():
            self._take_over(row)
            row = self._row(job_id, owner)
        state = dict(row)
        state["files"] = orjson.loads(row["files"]) if row["files"] else []
        return state

    def cancel(self, job_id: str, owner: str | None) -> None:
        """Stop a running job (its run removes its output) or delete a finished one."""
        row = self._row(job_id, owner)
        with self._writer() as conn, conn.begin():
            if row["status"] == "in-progress" and row["lease_until"] >= _now():
                conn.execute(update(export_jobs).where(export_jobs.c.id == job_id).values(cancelled=True))
            else:
                _forget(conn, job_id)

    def file(self, job_id: str, name: str, owner: str | None) -> Iterator[bytes]:
        """The chunks of one output file of a complete job."""
        state = self.state(job_id, owner)
        if state["status"] != "complete" or name not in {f["path"] for f in state["files"]}:
            raise NotFound(f"export job {job_id} has no file {name}")
        return self._chunks(job_id, state["runner"], name)

    def wait(self, job_id: str, timeout: float = 60) -> None:
        """Block until the job is no longer running (tests and the CLI)."""
        thread = self.threads.get(job_id)
        if thread:
            thread.join(timeout)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.store.engine.connect() as conn:
                status = conn.execute(select(export_jobs.c.status).where(export_jobs.c.id == job_id)).scalar()
            if status != "in-progress":
                return
            time.sleep(0.05)

    # -- internals -----------------------------------------------------------------------------

    def _writer(self):
        return self.store.engine.connect().execution_options(ihs_write=True)

    def _row(self, job_id: str, owner: str | None) -> dict:
        if not job_id or len(job_id) != 32 or any(ch not in _JOB_ID for ch in job_id):
            raise NotFound(f"no export job {job_id}")
        with self.store.engine.connect() as conn:
            row = conn.execute(select(export_jobs).where(export_jobs.c.id == job_id)).mappings().first()
        if row is None or row["owner"] != owner or row["cancelled"]:
            raise NotFound(f"no export job {job_id}")
        return dict(row)

    def _take_over(self, row: dict) -> None:
        """Claim a job whose lease ran out (compare-and-set on its runner) and run it here."""
        runner = uuid.uuid4().hex
        values = {"runner": runner, "lease_until": _now() + self.lease, "runs": row["runs"] + 1,
                  "progress": "restarted"}
        if row["runs"] >= MAX_RUNS:
            values.update(status="error", status_code=500,
                          error=f"the export stopped {row['runs']} times before it could finish; kick it off again")
        with self._writer() as conn, conn.begin():
            claimed = conn.execute(update(export_jobs).where(
                export_jobs.c.id == row["id"], export_jobs.c.runner == row["runner"],
                export_jobs.c.status == "in-progress").values(**values)).rowcount
        if claimed and "status" not in values:
            log.warning("export %s: its worker stopped; running it again here", row["id"])
            self._launch(row["id"], runner, ExportRequest(**orjson.loads(row["request"])))

    def _launch(self, job_id: str, runner: str, request: ExportRequest) -> None:
        thread = threading.Thread(target=self._run, args=(job_id, runner, request), name=f"export-{job_id[:8]}",
                                  daemon=True)
        self.threads[job_id] = thread
        thread.start()

    def _update(self, job_id: str, runner: str, **values) -> None:
        """Write to the job as this run; LostLease when another run holds it now or it was cancelled."""
        with self._writer() as conn, conn.begin():
            changed = conn.execute(update(export_jobs).where(
                export_jobs.c.id == job_id, export_jobs.c.runner == runner,
                export_jobs.c.cancelled == false()).values(**values)).rowcount
        if not changed:
            raise LostLease()

    def _complete(self, job_id: str, runner: str, events: list[dict], **values) -> None:
        """Mark the job complete and put its AuditEvents on the chain, together; LostLease as `_update`."""
        with self.store.session(write=True) as uow:
            record_many(uow, events, checked=True)
            changed = uow.conn.execute(update(export_jobs).where(
                export_jobs.c.id == job_id, export_jobs.c.runner == runner,
                export_jobs.c.cancelled == false()).values(status="complete", progress="complete", **values)).rowcount
            if not changed:
                raise LostLease()  # rolls the events back with the unit of work

    def _run(self, job_id: str, runner: str, request: ExportRequest) -> None:
        folder = Path(tempfile.mkdtemp(prefix=f"ihs-export-{job_id[:8]}-"))
        flags = {"cancelled": False, "lost": False, "progress": "started"}
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(job_id, runner, flags, stop), daemon=True)
        heartbeat.start()

        def progress(res_type: str, done: int, total: int, written: int) -> None:
            at = f", at {res_type}" if res_type else ""
            flags["progress"] = f"{done}/{total} types, {written} resources{at}"

        try:
            key = pseudonym_key(data_dir(self.store)) if request.deidentify else None
            result = export(self.store, request, folder, progress=progress,
                            cancelled=lambda: flags["cancelled"] or flags["lost"], key=key)
            if flags["lost"]:
                raise LostLease()
            files = [{"type": f.type, "path": f.path.name, "count": f.count} for f in result.files]
            files += [{"type": f.type, "path": f.path.name, "count": f.count, "deleted": True} for f in result.deleted]
            self._store_files(job_id, runner, folder, [f["path"] for f in files])
            self._complete(job_id, runner, completion_events(request, result, job_id),
                           transaction_time=result.transaction_time, files=orjson.dumps(files).decode())
        except (Cancelled, LostLease):
            self._discard(job_id, runner)
        except FhirError as exc:
            self._finish_with_error(job_id, runner, str(exc), exc.status)
        except Exception as exc:  # the job reports any failure to the client polling it
            log.exception("export %s failed", job_id)
            self._finish_with_error(job_id, runner, f"the export failed: {exc}", 500)
        finally:
            stop.set()
            heartbeat.join()
            shutil.rmtree(folder, ignore_errors=True)

    def _heartbeat(self, job_id: str, runner: str, flags: dict, stop: threading.Event) -> None:
        """Renew the lease and publish the progress; learn of a cancel or of a lost lease."""
        interval = min(max(self.lease / 1e6 / 4, 0.05), 1.0)
        while not stop.is_set():
            try:
                with self._writer() as conn, conn.begin():
                    changed = conn.execute(update(export_jobs).where(
                        export_jobs.c.id == job_id, export_jobs.c.runner == runner,
                        export_jobs.c.status == "in-progress").values(
                        lease_until=_now() + self.lease, progress=flags["progress"])).rowcount
                    cancelled = conn.execute(select(export_jobs.c.cancelled).where(
                        export_jobs.c.id == job_id)).scalar()
                flags["lost"] = flags["lost"] or not changed
                flags["cancelled"] = bool(cancelled) or cancelled is None
            except Exception:  # a database hiccup: the next beat tries again
                log.exception("export %s: heartbeat failed", job_id)
            stop.wait(interval)

    def _store_files(self, job_id: str, runner: str, folder: Path, names: list[str]) -> None:
        with self._writer() as conn, conn.begin():  # what an earlier, lost run left
            conn.execute(delete(export_files).where(export_files.c.job_id == job_id, export_files.c.runner != runner))
        for name in names:
            with open(folder / name, "rb") as source:
                number = 0
                while True:
                    batch = []
                    for _ in range(8):
                        data = source.read(CHUNK)
                        if not data:
                            break
                        batch.append({"job_id": job_id, "runner": runner, "name": name, "chunk": number, "data": data})
                        number += 1
                    if not batch:
                        break
                    with self._writer() as conn, conn.begin():
                        conn.execute(insert(export_files), batch)

    def _chunks(self, job_id: str, runner: str, name: str) -> Iterator[bytes]:
        f = export_files.c
        number = 0
        while True:  # one short read per chunk: no connection is held while the client downloads
            with self.store.engine.connect() as conn:
                data = conn.execute(select(f.data).where(f.job_id == job_id, f.runner == runner, f.name == name,
                                                         f.chunk == number)).scalar()
            if data is None:
                return
            yield bytes(data)
            number += 1

    def _discard(self, job_id: str, runner: str) -> None:
        """Remove this run's output, and the job itself when it was cancelled."""
        with self._writer() as conn, conn.begin():
            conn.execute(delete(export_files).where(export_files.c.job_id == job_id, export_files.c.runner == runner))
            conn.execute(delete(export_jobs).where(export_jobs.c.id == job_id, export_jobs.c.cancelled == true()))

    def _finish_with_error(self, job_id: str, runner: str, message: str, status_code: int) -> None:
        try:
            self._update(job_id, runner, status="error", error=message, status_code=status_code)
        except LostLease:
            pass


def _forget(conn, job_id: str) -> None:
    conn.execute(delete(export_files).where(export_files.c.job_id == job_id))
    conn.execute(delete(export_jobs).where(export_jobs.c.id == job_id))
