"""The cost of sealing resident ID numbers: store writes and reads with and without protected identifiers.

    .venv/bin/python bench/protected_identifiers.py [--database URL] [--patients 2000] [--rounds 3]

In one process, on a fresh database per run, writes
- `patients`: the Synthea patients, copied to `--patients` Patients, each with a GB 11643 resident
  ID number (the worst case: every resource holds a protected identifier), 100 per transaction;
- `synthea`: every resource of the first 10 Synthea patients' bundles (their Patients with a
  resident ID number), 100 per transaction;
then reads every Patient back by id, 5 times. Each is measured with the resident ID system protected
and with no system protected (the same store code, nothing sealed), alternating, the best of
`--rounds` each, and printed as resources per CPU second of this process (SQLite runs in it; the
waits for fsync and for other processes on a shared machine do not count) with the ratio
protected / unprotected of the same run, then the same as wall-clock rates.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from indexing import SYNTHEA, synthea_resources  # noqa: E402

from ihs.mpi.idnumber import check_character  # noqa: E402
from ihs.store.protected import RESIDENT_ID, IdentifierProtection  # noqa: E402
from ihs.store.store import Store  # noqa: E402

BATCH = 100


def resident_id(n: int) -> str:
    body = f"330502{19500101 + (n % 500) * 100 + n % 28:08d}{n % 1000:03d}"
    return body + check_character(body)


def with_resident_id(patient: dict, n: int, new_id: str | None = None) -> dict:
    copy = dict(patient, id=new_id or patient["id"])
    copy["identifier"] = [*patient.get("identifier", ()), {"use": "official", "system": RESIDENT_ID,
                                                           "value": resident_id(n)}]
    return copy


def workloads(resources: list[dict], patients: int) -> dict[str, list[dict]]:
    synthea_patients = [r for r in resources if r["resourceType"] == "Patient"]
    copies = [with_resident_id(synthea_patients[n % len(synthea_patients)], n, f"bench-{n}") for n in range(patients)]
    first = {p["id"] for p in synthea_patients[:10]}
    mix = [with_resident_id(r, n) if r["resourceType"] == "Patient" else r
           for n, r in enumerate(resources)
           if r["resourceType"] != "Patient" and _subject(r) in first or r.get("id") in first]
    return {"patients": copies, "synthea": mix}


def _subject(resource: dict) -> str | None:
    reference = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return reference.split("/", 1)[1] if reference.startswith("Patient/") else None


READS = 5


def run(url: str, resources: list[dict], protected: bool) -> dict[str, float]:
    """Writes and Patient reads per CPU second and per wall-clock second, on a fresh schema."""
    store = Store(url, pool_size=2)
    store.drop_schema()
    store.create_schema()
    if not protected:
        store.protection = IdentifierProtection(store.engine, systems=frozenset())
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(resources), BATCH):
            with store.session(write=True) as uow:
                for resource in resources[start:start + BATCH]:
                    uow.create(dict(resource))
        rates = {"writes/cpu-s": len(resources) / (time.process_time() - cpu),
                 "writes/s": len(resources) / (time.perf_counter() - wall)}
        patient_ids = [r["id"] for r in resources if r["resourceType"] == "Patient"] * READS
        cpu, wall = time.process_time(), time.perf_counter()
        with store.session() as uow:
            for patient_id in patient_ids:
                uow.current("Patient", patient_id)
        rates["reads/cpu-s"] = len(patient_ids) / (time.process_time() - cpu)
        rates["reads/s"] = len(patient_ids) / (time.perf_counter() - wall)
        return rates
    finally:
        store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="a database URL to use (emptied!); default: a temporary SQLite file")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not SYNTHEA.exists():
        sys.exit(f"{SYNTHEA} is missing (set IHS_SHARED_DATA)")
    url = args.database or f"sqlite:///{tempfile.mkdtemp(prefix='ihs-bench-')}/ihs.db"
    for name, resources in workloads(synthea_resources(), args.patients).items():
        best: dict[bool, dict[str, float]] = {True: {}, False: {}}
        for _ in range(args.rounds):
            for protected in (True, False):
                for measure, rate in run(url, resources, protected).items():
                    best[protected][measure] = max(best[protected].get(measure, 0.0), rate)
        on, off = best[True], best[False]
        print(f"protected identifiers, {name} ({len(resources):,} resources): " + "; ".join(
            f"{measure} {on[measure]:,.0f} vs {off[measure]:,.0f} unprotected, ratio {on[measure] / off[measure]:.2f}"
            for measure in on))


if __name__ == "__main__":
    main()
