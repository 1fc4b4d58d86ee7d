"""Master patient index: accuracy on FEBRL4, FEBRL3 and the generated Chinese set, $match latency at
100,000 patients, and the incremental matching rate.

    .venv/bin/python bench/mpi.py [--patients 100000] [--database URL] [--accuracy-only | --incremental-only]

Prints one line per dataset, `<dataset> precision P recall R F1 F time Ts`: the engine (blocking,
EM on the data itself, the match decision at probability >= 0.5) over FEBRL4 without the SSN
field (two files of 5,000 to link), FEBRL3 without the SSN field (5,000 records to deduplicate)
and the Chinese set of ihs/mpi/chinese.py (5,000 people, 9,197 records; its docstring is the
error model). Pairs are scored against the truth in rec_id (FEBRL) or the generator's person.
Time covers features, blocking, training and scoring. Then, over a store holding `--patients`
generated Chinese records (SQLite in a temporary folder unless --database):
- `match <N> patients p50 Xms p95 Yms (Q queries; index loaded in Ls)`: POST Patient/$match through
  the whole app, after the index was loaded from the store;
- `incremental <N> patients/s one transaction per event, <M> patients/s in batches of 100, <D>
  patients/s through the outbox dispatcher`: registrations matched, linked and their golden
  records written by the change handlers (500 registrations each way; through the dispatcher, its
  rounds also deliver the events of the links and golden records written), each with the process
  CPU time per patient (less sensitive to other load on the machine than the rate) and the load
  average.
`--incremental-only` skips the accuracy lines and the $match latency.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ihs.mpi import chinese, febrl  # noqa: E402
from ihs.mpi.engine import PROBABLE, Matcher  # noqa: E402
from ihs.mpi.evaluate import accuracy, true_pairs  # noqa: E402
from ihs.mpi.features import person  # noqa: E402

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "febrl-record-linkage.tar.gz"


def link(patients: list[dict], truth: dict) -> str:
    started = time.perf_counter()
    matcher = Matcher()
    for patient in patients:
        matcher.add(person(patient))
    levels = matcher.train(max_records=None)
    predicted = {frozenset(pair) for pair, lv in levels.items() if matcher.model.probability(lv) >= PROBABLE}
    elapsed = time.perf_counter() - started
    result = accuracy(predicted, true_pairs(truth))
    return (f"precision {result.precision:.4f} recall {result.recall:.4f} F1 {result.f1:.4f} "
            f"time {elapsed:.1f}s")


def accuracy_lines() -> None:
    for dataset in ("FEBRL4", "FEBRL3"):
        patients = febrl.load(ARCHIVE, dataset)
        print(dataset, link(patients, {p["id"]: febrl.entity_of(p["id"]) for p in patients}), flush=True)
    patients, truth = chinese.generate(5000)
    print("Chinese", link(patients, truth), flush=True)


def load_store(url: str | None, patients: list[dict]):
    from ihs.fhir.validation import validate
    from ihs.store.store import Store

    store = Store(url)
    store.create_schema()
    for start in range(0, len(patients), 1000):
        with store.session(write=True) as uow:
            for patient in patients[start:start + 1000]:
                validate(patient)
                uow.create(patient)
    return store


def scale_lines(count: int, url: str | None, *, latency: bool = True) -> None:
    from ihs.mpi.changes import on_patient_change, on_patient_changes
    from ihs.mpi.index import index_for, save_model

    people = count * 100 // 182 + 1000  # 1.82 records per person
    patients, _ = chinese.generate(people, seed=99)
    stored, queries, arrivals = patients[:count], patients[count:count + 300], patients[count + 300:count + 1800]
    store = load_store(url, stored)
    started = time.perf_counter()
    index = index_for(store)
    loaded = time.perf_counter() - started
    index.matcher.train()
    with store.session(write=True) as uow:
        save_model(uow, index.matcher.model)
    if latency:
        match_line(store, queries, len(index.matcher), loaded)
    single, batched, dispatched = arrivals[:500], arrivals[500:1000], arrivals[1000:]
    rate, cpu = _register(store, single, lambda ids: [on_patient_change(store, SimpleNamespace(
        res_type="Patient", res_id=i)) for i in ids], batch=1)
    batch_rate, batch_cpu = _register(store, batched, lambda ids: on_patient_changes(store, [
        SimpleNamespace(res_type="Patient", res_id=i) for i in ids]), batch=100)
    outbox_rate, outbox_cpu = _dispatch(store, dispatched)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"incremental {rate:.0f} patients/s one transaction per event ({cpu:.1f} ms CPU/patient), "
          f"{batch_rate:.0f} patients/s in batches of 100 ({batch_cpu:.1f} ms CPU/patient), "
          f"{outbox_rate:.0f} patients/s through the outbox dispatcher ({outbox_cpu:.1f} ms CPU/patient; "
          f"load average {load})", flush=True)


def match_line(store, queries: list[dict], records: int, loaded: float) -> None:
    """POST Patient/$match through the whole app, one query at a time, as a hospital system (its
    bearer token checked, the policy deciding and the access audited)."""
    from starlette.testclient import TestClient

    from ihs.api.app import create_app
    from tests.conftest import system_token

    timings = []
    token = system_token(store)
    with TestClient(create_app(store, base_url="http://testserver")) as client:
        client.headers["Content-Type"] = "application/fhir+json"
        client.headers["Authorization"] = f"Bearer {token}"
        for query in queries:
            body = {"resourceType": "Parameters", "parameter": [
                {"name": "resource", "resource": {k: v for k, v in query.items() if k != "id"}}]}
            started = time.perf_counter()
            response = client.post("/Patient/$match", json=body)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    p95 = statistics.quantiles(timings, n=20)[-1]
    print(f"match {records} patients p50 {statistics.median(timings):.1f}ms p95 {p95:.1f}ms "
          f"({len(timings)} queries; index loaded in {loaded:.0f}s)", flush=True)


def _register(store, patients: list[dict], handle, *, batch: int) -> tuple[float, float]:
    """Create the Patients (not timed), then time the handler over their events: (patients/s, CPU ms/patient)."""
    with store.session(write=True) as uow:
        ids = [uow.create(patient).id for patient in patients]
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(ids), batch):
        handle(ids[start:start + batch])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(ids) / elapsed, cpu * 1000 / len(ids)


def _dispatch(store, patients: list[dict]) -> tuple[float, float]:
    """Register the Patients in one commit (not timed), then time the outbox dispatcher until it has
    delivered their events and those of the links and golden records written for them."""
    from ihs.events import EventBus
    from ihs.events.outbox import OutboxDispatcher
    from ihs.mpi.changes import subscribe_all

    drain = OutboxDispatcher(store, EventBus())
    while drain.dispatch_pending():  # the store's earlier changes: out of the way
        pass
    bus = EventBus()
    subscribe_all(bus.subscribe)
    dispatcher = OutboxDispatcher(store, bus)
    with store.session(write=True) as uow:
        for patient in patients:
            uow.create(patient)
    started, cpu = time.perf_counter(), time.process_time()
    while dispatcher.dispatch_pending():
        pass
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(patients) / elapsed, cpu * 1000 / len(patients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--database", help="store URL (default: SQLite in a temporary folder)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--accuracy-only", action="store_true")
    only.add_argument("--incremental-only", action="store_true", help="only the incremental matching rate")
    args = parser.parse_args()
    if not args.incremental_only:
        accuracy_lines()
    if not args.accuracy_only:
        with tempfile.TemporaryDirectory() as folder:
            scale_lines(args.patients, args.database or f"sqlite:///{folder}/mpi.db",
                        latency=not args.incremental_only)


if __name__ == "__main__":
    main()
