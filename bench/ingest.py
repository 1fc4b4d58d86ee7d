"""Ingest and read throughput of a running IHS server, on SQLite and PostgreSQL.

    .venv/bin/python bench/ingest.py [--backend sqlite|postgresql|both] [--workers 2] [--clients 4]
                                     [--security on|off|both]

Starts `ihs serve` for each backend on an empty database, POSTs the 100-patient Synthea
transaction bundles (38,970 resources) from several concurrent clients and prints
`ingest <backend>: N resources/s`; then `GET Patient/[id]` from several concurrent client
processes and prints `reads <backend>: N reads/s`, with `GET /healthz` (a request that touches the
database but no resource) as a baseline; then a mix of searches (`Observation?patient=&code=`,
`Patient?identifier=`) and prints `searches <backend>: N searches/s`. With `--security both` two
servers run side by side, without and with security, each read and search phase alternating
between them, and the on / off ratios of ingest, reads and searches are printed.
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.server_process import ServerProcess  # noqa: E402

DATA = Path(os.environ.get("IHS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SYNTHEA = DATA / "synthea-r4-bulk-data-server-100p.tar.gz"
POSTGRES = os.environ.get("IHS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def synthea_bundles() -> list[bytes]:
    with tarfile.open(SYNTHEA) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".json")),
                         key=lambda m: (0 if "Information" in m.name else 1, m.name))
        documents = [archive.extractfile(m).read() for m in members]
    return [d for d in documents if b'"transaction"' in d[:2000]]


TOKEN = {"value": ""}


def _auth() -> dict:
    return {"Authorization": f"Bearer {TOKEN['value']}"}


def post(port: int, body: bytes) -> tuple[int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", "/", body, {"Content-Type": "application/fhir+json", **_auth()})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"POST / answered {response.status}: {payload[:500]!r}")
    return len(orjson.loads(payload)["entry"]), response.status


def ingest(port: int, bundles: list[bytes], clients: int) -> tuple[int, float]:
    # Shared organizations and practitioners first, as a hospital would register them.
    head = bundles[:2]
    started = time.perf_counter()
    stored = sum(post(port, b)[0] for b in head)
    with ThreadPoolExecutor(clients) as pool:
        stored += sum(n for n, _ in pool.map(lambda b: post(port, b), bundles[2:]))
    return stored, time.perf_counter() - started


def drain_outbox(url: str, limit: float = 300) -> float:
    """Wait until the event handlers (MPI, surveillance) have processed every change; returns seconds waited."""
    from ihs.store.store import Store

    store, started = Store(url), time.perf_counter()
    try:
        while store.pending_events(1) and time.perf_counter() - started < limit:
            time.sleep(0.5)
    finally:
        store.dispose()
    return time.perf_counter() - started


RECONNECT_EVERY = 100  # requests per connection: which worker accepts a connection is chance, so spread them


def audit_catch_up(url: str, limit: float = 300) -> float:
    """Wait until every read audit journaled so far is filed onto the chain; returns seconds waited.

    The filer runs below the requests' priority, so a burst of reads leaves a backlog; waiting for
    it keeps one phase's filing out of the next phase's figure, and the wait is reported."""
    from ihs.audit.journal import unfiled_events
    from ihs.store.store import Store

    store, started = Store(url), time.perf_counter()
    try:
        while unfiled_events(store) and time.perf_counter() - started < limit:
            time.sleep(0.2)
    finally:
        store.dispose()
    return time.perf_counter() - started


def _reader(args) -> int:
    port, paths, seconds, token = args
    headers = {"Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    done, rng = 0, random.Random(os.getpid())
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if done and done % RECONNECT_EVERY == 0:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", rng.choice(paths), headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET answered {response.status}")
        done += 1
    return done


def reads_per_second(port: int, paths: list[str], clients: int, seconds: float = 8) -> float:
    with multiprocessing.Pool(clients) as pool:
        counts = pool.map(_reader, [(port, paths, seconds, TOKEN["value"])] * clients)
    return sum(counts) / seconds


def patient_paths(port: int) -> list[str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/Patient/_history?_count=1000", headers=_auth())
    bundle = orjson.loads(conn.getresponse().read())
    return [f"/Patient/{e['resource']['id']}" for e in bundle["entry"] if "resource" in e]


def search_paths(port: int) -> list[str]:
    """A mix of the searches clinical systems send most: a patient's observations of one code, and a
    patient by identifier (Synthea's medical record number, and its SSN-like second identifier)."""
    def fetch(path: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path, headers=_auth())
        return orjson.loads(conn.getresponse().read())

    observations = fetch("/Observation?_count=300&_elements=subject,code")
    paths = sorted({f"/Observation?patient={e['resource']['subject']['reference']}"
                    f"&code={e['resource']['code']['coding'][0]['code']}" for e in observations["entry"]})
    patients = fetch("/Patient?_count=300&_elements=identifier")
    paths += [f"/Patient?identifier={i['system']}|{i['value']}" for e in patients["entry"]
              for i in e["resource"].get("identifier", [])[1:3] if i.get("system") and i.get("value")]
    return paths


def empty_database(backend: str, secured: bool) -> str:
    """A new, empty database for one server of the run (with no read-audit journals left from another run)."""
    import shutil

    from ihs.audit.journal import journal_directory

    name = f"ihs_bench_{'on' if secured else 'off'}"
    if backend == "postgresql":
        import psycopg

        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        url = POSTGRES.rsplit("/", 1)[0] + "/" + name
    else:
        path = Path(f"bench/out/{name}.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        _no_server_on(path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    shutil.rmtree(journal_directory(url), ignore_errors=True)
    return url


def _no_server_on(path: Path) -> None:
    """Stop the run if a server (left by an interrupted run) still serves this database: it would hold the
    change dispatcher's lock, and the new server's change handlers would never run."""
    import fcntl

    with open(f"{path}.dispatcher.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"a server still serves {path} (it holds {path}.dispatcher.lock); stop it first") from None


class Served:
    """One server of the run, started on an empty database and loaded."""

    def __init__(self, backend: str, workers: int, secured: bool):
        self.secured = secured
        self.label = f"{backend}{'' if secured else ' (security off)'}"
        self.url = empty_database(backend, secured)
        self.server = ServerProcess(self.url, workers=workers, secured=secured).start()
        self.token = self.server.system_token()

    def use(self) -> int:
        TOKEN["value"] = self.token
        return self.server.port

    def load(self, bundles: list[bytes], workers: int, clients: int) -> float:
        stored, seconds = ingest(self.use(), bundles, clients)
        print(f"ingest {self.label}: {stored / seconds:,.0f} resources/s ({stored} resources in {seconds:.1f} s, "
              f"{workers} workers, {clients} clients)", flush=True)
        drained = drain_outbox(self.url)
        print(f"events {self.label}: the change handlers finished {drained:.1f} s after the ingest", flush=True)
        self.paths = {"reads": patient_paths(self.use()), "searches": search_paths(self.use())}
        return stored / seconds

    def rate(self, kind: str, clients: int, seconds: float) -> tuple[float, float]:
        """(requests/s, seconds until the read audits were filed) of one phase."""
        port = self.use()
        done = reads_per_second(port, self.paths[kind], clients, seconds)
        return done, audit_catch_up(self.url) if self.secured else 0.0


PHASE_SECONDS = 4  # each phase alternates between the servers ROUNDS times, so both see the same machine
ROUNDS = 5


def compare(backend: str, workers: int, clients: int, bundles: list[bytes], modes: list[bool]) -> None:
    served = [Served(backend, workers, secured) for secured in modes]
    try:
        ingested = {s.secured: s.load(bundles, workers, clients) for s in served}
        for s in served:
            baseline = reads_per_second(s.use(), ["/healthz"], clients, PHASE_SECONDS)
            print(f"baseline {s.label}: GET /healthz {baseline:,.0f}/s", flush=True)
        rates: dict[tuple[str, bool], list[float]] = {}
        lags: dict[tuple[str, bool], list[float]] = {}
        for kind in ("reads", "searches"):
            for _ in range(ROUNDS):
                for s in served:
                    done, lag = s.rate(kind, clients, PHASE_SECONDS)
                    rates.setdefault((kind, s.secured), []).append(done)
                    lags.setdefault((kind, s.secured), []).append(lag)
        what = {"reads": "GET Patient/id", "searches": "Observation?patient=&code= and Patient?identifier="}
        for kind in ("reads", "searches"):
            for s in served:
                values = rates[(kind, s.secured)]
                lag = f"; audit filing caught up at most {max(lags[(kind, True)]):.1f} s after a phase" if s.secured else ""
                print(f"{kind} {s.label}: {sum(values) / len(values):,.0f} {kind}/s ({what[kind]}, {clients} clients; "
                      f"{ROUNDS} phases of {PHASE_SECONDS} s: {', '.join(f'{v:,.0f}' for v in values)}){lag}",
                      flush=True)
        if len(served) == 2:
            mean = {key: sum(v) / len(v) for key, v in rates.items()}
            print(f"security cost {backend}: ingest ratio {ingested[True] / ingested[False]:.2f}, "
                  f"reads ratio {mean[('reads', True)] / mean[('reads', False)]:.2f}, "
                  f"searches ratio {mean[('searches', True)] / mean[('searches', False)]:.2f} "
                  "(on / off, same run, phases alternating)", flush=True)
            # Filing runs on CPU the requests leave idle; a load that never lets up pays for it within the reads.
            filed = {kind: sum(rates[(kind, True)]) * PHASE_SECONDS / (ROUNDS * PHASE_SECONDS + sum(lags[(kind, True)]))
                     for kind in ("reads", "searches")}
            print(f"security cost {backend}, counting the filing time after each phase as part of it: "
                  f"reads ratio {filed['reads'] / mean[('reads', False)]:.2f}, "
                  f"searches ratio {filed['searches'] / mean[('searches', False)]:.2f}", flush=True)
    finally:
        for s in served:
            s.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--security", choices=["on", "off", "both"], default="on",
                        help="off: the same server without authentication, policy and audit (to measure their cost)")
    args = parser.parse_args()
    bundles = synthea_bundles()
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        modes = {"on": [True], "off": [False], "both": [False, True]}[args.security]
        compare(backend, args.workers, args.clients, bundles, modes)


if __name__ == "__main__":
    main()
