"""What the access policy costs a Bulk Data export: each caller's export against a trusted caller's.

    .venv/bin/python bench/export_access.py [--patients 2000] [--observations 10] [--rounds 3]

Builds, in a temporary SQLite store, `--patients` patients with `--observations` Observations each,
tests/auth/world.py's network beside them (hospitals, staff, relationships, Consents), then exports
Patient and Observation at system level as: no caller (the CLI, no policy at all: the baseline), a
trusted backend system (policy asked, restriction `everything`: must cost nothing), a practitioner
(treatment relationships under Consent and the institution's records) and a patient (their own and
their proxies' records). The callers alternate within every round, so machine load hits all alike;
it prints the best time of each, its ratio to the baseline and the resources exported.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ihs.analytics.bulk import ExportRequest, caller_claims, export  # noqa: E402
from ihs.auth.schema import create_auth_schema  # noqa: E402
from ihs.store.store import Store  # noqa: E402
from tests.auth import world  # noqa: E402

CALLERS = {"no caller": None, "system": "system", "practitioner": "doctorA", "patient": "child"}


def build(directory: Path, patients: int, observations: int) -> Store:
    store = Store(f"sqlite:///{directory}/ihs.db")
    store.create_schema()
    create_auth_schema(store.engine)  # the policy reads break-the-glass grants
    world.load(store)
    for start in range(0, patients, 200):
        with store.session(write=True) as uow:
            for number in range(start, min(start + 200, patients)):
                patient = uow.create({"resourceType": "Patient", "name": [{"family": f"P{number}"}]})
                author = "hA" if number % 10 == 0 else "hB"  # a tenth written at the practitioner's hospital
                for _ in range(observations):
                    observation = world.observation("", patient.id, author)
                    del observation["id"]  # the store names it
                    uow.create(observation)
    return store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--observations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        store = build(directory, args.patients, args.observations)
        best: dict[str, float] = {}
        counts: dict[str, int] = {}
        for round_ in range(args.rounds):
            for label, who in CALLERS.items():
                caller = None if who is None else caller_claims(world.principal(
                    who, **({"scope": "system/*.cruds"} if who == "system" else {})))
                request = ExportRequest(types=["Patient", "Observation"], caller=caller)
                started = time.perf_counter()
                result = export(store, request, directory / f"out-{round_}-{label.replace(' ', '-')}")
                seconds = time.perf_counter() - started
                best[label] = min(best.get(label, seconds), seconds)
                counts[label] = sum(f.count for f in result.files)
        base = best["no caller"]
        for label in CALLERS:
            print(f"export {label}: {best[label]:.3f} s, {best[label] / base:.2f}x no caller, "
                  f"{counts[label]} resources")
        store.dispose()


if __name__ == "__main__":
    main()
