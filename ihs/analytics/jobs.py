"""Bulk export jobs: kicked off by the API, run on a background thread, polled, downloaded, cancelled.

A job is a directory under the exports root (`<data dir>/exports/<job id>/`) holding `job.json`
(the request, its owner, its state and progress), the NDJSON files and, once complete, the
manifest. Every API worker on the machine shares the directory, so any of them answers a
status poll; the thread of the worker that accepted the kick-off does the work and stops at
the next resource when a DELETE leaves a `cancelled` marker.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import orjson

from ihs.analytics.bulk import Cancelled, ExportRequest, ExportResult, export
from ihs.analytics.deidentify import pseudonym_key
from ihs.fhir.errors import FhirError, NotFound
from ihs.store.store import Store

log = logging.getLogger("ihs.analytics.export")
_JOB_ID = "0123456789abcdef-"


def data_dir(store: Store) -> Path:
    """Where the platform keeps files: IHS_DATA_DIR, else beside the SQLite database, else ./ihs-data."""
    configured = os.environ.get("IHS_DATA_DIR")
    if configured:
        return Path(configured)
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path("ihs-data").resolve()


class ExportJobs:
    """The export jobs of one store."""

    def __init__(self, store: Store, root: Path | None = None, *, write_every: float = 0.5):
        self.store = store
        self.root = root or data_dir(store) / "exports"
        self.write_every = write_every
        self.threads: dict[str, threading.Thread] = {}

    def start(self, request: ExportRequest, *, request_url: str, owner: str | None) -> str:
        """Check the request, record the job and start its thread; the job id."""
        request.check()
        job_id = uuid.uuid4().hex
        directory = self.root / job_id
        directory.mkdir(parents=True)
        state = {"id": job_id, "status": "in-progress", "request": asdict(request), "request_url": request_url,
                 "owner": owner, "progress": "queued", "started": time.time()}
        self._write(job_id, state)
        thread = threading.Thread(target=self._run, args=(job_id, request, state), name=f"export-{job_id[:8]}",
                                  daemon=True)
        self.threads[job_id] = thread
        thread.start()
        return job_id

    def state(self, job_id: str, owner: str | None) -> dict:
        """The job's recorded state; NotFound for an unknown, cancelled or someone else's job."""
        path = self._dir(job_id) / "job.json"
        try:
            state = orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            raise NotFound(f"no export job {job_id}") from None
        if state.get("owner") != owner or (self._dir(job_id) / "cancelled").exists():
            raise NotFound(f"no export job {job_id}")
        return state

    def cancel(self, job_id: str, owner: str | None) -> None:
        """Stop a running job (its thread removes its files) or delete a finished one's files."""
        state = self.state(job_id, owner)
        directory = self._dir(job_id)
        (directory / "cancelled").touch()
        if state["status"] != "in-progress":
            shutil.rmtree(directory, ignore_errors=True)

    def file(self, job_id: str, name: str, owner: str | None) -> Path:
        """The path of one output file of a complete job."""
        state = self.state(job_id, owner)
        names = {Path(f["path"]).name for f in state.get("files", [])}
        if state["status"] != "complete" or name not in names:
            raise NotFound(f"export job {job_id} has no file {name}")
        return self._dir(job_id) / name

    def wait(self, job_id: str, timeout: float = 60) -> None:
        """Block until the job's thread ends (tests and the CLI)."""
        thread = self.threads.get(job_id)
        if thread:
            thread.join(timeout)

    # -- internals -----------------------------------------------------------------------------

    def _dir(self, job_id: str) -> Path:
        if not job_id or any(ch not in _JOB_ID for ch in job_id):
            raise NotFound(f"no export job {job_id}")
        return self.root / job_id

    def _write(self, job_id: str, state: dict) -> None:
        path = self._dir(job_id) / "job.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(state, default=str))
        temporary.replace(path)  # readers never see a half-written state

    def _run(self, job_id: str, request: ExportRequest, state: dict) -> None:
        directory = self._dir(job_id)
        cancelled_marker = directory / "cancelled"
        last_write = [0.0]

        def progress(res_type: str, done: int, total: int, written: int) -> None:
            now = time.monotonic()
            if now - last_write[0] >= self.write_every:
                last_write[0] = now
                at = f", at {res_type}" if res_type else ""
                state["progress"] = f"{done}/{total} types, {written} resources{at}"
                self._write(job_id, state)

        try:
            key = pseudonym_key(data_dir(self.store)) if request.deidentify else None
            result: ExportResult = export(self.store, request, directory, progress=progress,
                                          cancelled=cancelled_marker.exists, key=key)
        except Cancelled:
            shutil.rmtree(directory, ignore_errors=True)
            return
        except FhirError as exc:
            state.update(status="error", error=str(exc), status_code=exc.status)
        except Exception as exc:  # the job reports any failure to the client polling it
            log.exception("export %s failed", job_id)
            state.update(status="error", error=f"the export failed: {exc}", status_code=500)
        else:
            state.update(status="complete", progress="complete", transaction_time=result.transaction_time,
                         files=[{"type": f.type, "path": f.path.name, "count": f.count} for f in result.files])
        if cancelled_marker.exists():
            shutil.rmtree(directory, ignore_errors=True)
            return
        self._write(job_id, state)
