"""Prescription-safety CDS Hooks latency: an order-sign call for a patient on 20 active medicines.

    .venv/bin/python bench/cds.py [--calls 50] [--postgres postgresql://...]

The service fetches the patient's data itself (fhirServer is IHS), reviews the order against the
20 medicines, allergies, conditions and eGFR, and stores a DetectedIssue per card; timed end to
end through the HTTP app (Starlette TestClient), after one warm-up call.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ihs.api.app import create_app  # noqa: E402
from ihs.store.store import Store  # noqa: E402
from tests.cds.helpers import hook_request, order  # noqa: E402
from tests.cds.test_performance import polypharmacy_chart  # noqa: E402


def measure(url: str, calls: int) -> list[float]:
    store = Store(url)
    store.drop_schema()
    store.create_schema()
    polypharmacy_chart(store)
    timings = []
    with TestClient(create_app(store, base_url="http://testserver")) as client:
        for _ in range(calls + 1):
            body = hook_request("order-sign", [order("new", "ibuprofen", dose=400, per_day=3)])
            body["fhirServer"] = "http://testserver"
            started = time.perf_counter()
            response = client.post("/cds-services/prescription-safety", content=orjson.dumps(body),
                                   headers={"Content-Type": "application/json"})
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    store.dispose()
    return timings[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure too (its schema is dropped)")
    args = parser.parse_args()
    urls = [("SQLite", f"sqlite:///{tempfile.mkdtemp()}/cds.db")] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    for name, url in urls:
        timings = sorted(measure(url, args.calls))
        p95 = timings[int(len(timings) * 0.95) - 1]
        print(f"{name}: {args.calls} calls, median {statistics.median(timings) * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms, max {timings[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
