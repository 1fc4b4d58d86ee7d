"""What the _text/_content and _contained indexes cost at write time, on SQLite and PostgreSQL.

    .venv/bin/python bench/search_index_write.py [--backend sqlite|postgresql|both] [--rounds 2]

Writes the 100-patient Synthea resources (references resolved, as bench/indexing.py reads them) into
an empty store, 400 per unit of work as a transaction Bundle would, twice per round: with the
parameter index rows only (the extraction before full-text and contained indexing existed), and
with everything `ihs.fhir.indexing.extract` writes now (idx_fulltext, contained resources). Prints
resources/s of each (best round) and their ratio; the two alternate so that machine load hits both.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.indexing import SYNTHEA, synthea_resources  # noqa: E402
from ihs.fhir import indexing  # noqa: E402
from ihs.fhir.searchparams import registry  # noqa: E402
from ihs.store.store import Store  # noqa: E402

POSTGRES = os.environ.get("IHS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/ihs_bench_index_write")
BATCH = 400


def parameters_only(resource: dict):
    return indexing._extract_values(resource, registry())


def _write(url: str, resources: list[dict], extract) -> float:
    store = Store(url, extract=extract)
    store.drop_schema()
    store.create_schema()
    started = time.perf_counter()
    for start in range(0, len(resources), BATCH):
        with store.session(write=True) as uow:
            for resource in resources[start:start + BATCH]:
                uow.create(dict(resource), method="PUT")
    seconds = time.perf_counter() - started
    store.drop_schema()
    store.dispose()
    return len(resources) / seconds


def _postgres_url() -> str:
    import psycopg

    admin, name = POSTGRES.rsplit("/", 1)
    with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return POSTGRES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not SYNTHEA.exists():
        sys.exit(f"{SYNTHEA} is missing (set IHS_SHARED_DATA)")
    # organizations and practitioners recur in several bundles: each is written once
    resources = list({(r["resourceType"], r["id"]): r for r in synthea_resources()}.values())
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite:///{scratch}/ihs.db" if backend == "sqlite" else _postgres_url()
            before, after = [], []
            for _ in range(args.rounds):
                before.append(_write(url, resources, parameters_only))
                after.append(_write(url, resources, indexing.extract))
        print(f"write {backend}: parameters only {max(before):,.0f} resources/s, with full-text and contained "
              f"{max(after):,.0f} resources/s (ratio {max(after) / max(before):.2f}; {len(resources):,} resources, "
              f"best of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
