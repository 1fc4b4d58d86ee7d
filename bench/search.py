"""Search latency and throughput on >= 1,000,000 resources, on SQLite and PostgreSQL.

    .venv/bin/python bench/search.py build --database sqlite:///ihs-data/bench-search.db [--copies 26]
    .venv/bin/python bench/search.py run --database sqlite:///ihs-data/bench-search.db [--samples 200]

`build` replicates the 100-patient Synthea set (38,472 distinct resources) `--copies` times with
fresh ids and identifiers and stores it straight through the store (Store.session + uow.create, a
few thousand resources per transaction, index rows included), then ANALYZEs. `run` measures a fixed
query mix through `ihs.store.search.search` (parse, SQL, page load, includes; no HTTP): p50/p95 per
query, the p50 of the best hand-written SQL for the same page and their ratio, then the mix's
throughput with one worker process per core. Results go in docs/benchmarks.md ("## Search").
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import statistics
import sys
import tarfile
import time
from pathlib import Path

import orjson
from sqlalchemy import func, select, text
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ihs.store.schema import resources  # noqa: E402
from ihs.store.search import search  # noqa: E402
from ihs.store.store import Store  # noqa: E402

DATA = Path(os.environ.get("IHS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SYNTHEA = DATA / "synthea-r4-bulk-data-server-100p.tar.gz"
BATCH = 2000
_UUID_REF = re.compile(r'"urn:uuid:([0-9a-f\-]{36})"')

# ---------------------------------------------------------------------------- the dataset


def synthea_resources() -> list[dict]:
    """The distinct resources of the Synthea set (organizations and practitioners repeat across bundles)."""
    seen, out = set(), []
    with tarfile.open(SYNTHEA) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".json")),
                         key=lambda m: (0 if "Information" in m.name else 1, m.name))
        for member in members:
            document = orjson.loads(archive.extractfile(member).read())
            for entry in document.get("entry", []):
                resource = entry["resource"]
                key = (resource["resourceType"], resource["id"])
                if key not in seen:
                    seen.add(key)
                    out.append(resource)
    return out


def _fresh_id(old: str, copy: int) -> str:
    # the copy number replaces the first three hex digits: unique while the old ids differ after them
    return f"{copy:03x}{old[3:]}"


def replicate(originals: list[dict], copy: int):
    """Copy `copy` of the set: fresh ids, references rewritten to Type/id, identifier values suffixed."""
    type_of = {r["id"]: r["resourceType"] for r in originals}

    def ref(match):
        old = match.group(1)
        return f'"{type_of[old]}/{_fresh_id(old, copy)}"'

    for original in originals:
        raw = _UUID_REF.sub(ref, orjson.dumps(original).decode())
        resource = orjson.loads(raw)
        resource["id"] = _fresh_id(original["id"], copy)
        if copy:
            for identifier in resource.get("identifier", ()):
                if "value" in identifier:
                    identifier["value"] = f"{identifier['value']}-{copy}"
        yield resource


def build(store: Store, copies: int) -> None:
    store.create_schema()
    originals = synthea_resources()
    assert len({r["id"][3:] for r in originals}) == len(originals), "ids collide after their first 3 digits"
    with store.engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(resources)).scalar_one()
    first = have // len(originals)
    if have % len(originals):
        raise SystemExit(f"the database holds {have} resources, not whole copies of {len(originals)}; "
                         "start from an empty database")
    bar = tqdm(total=copies * len(originals), initial=have, unit="resource", desc="building", smoothing=0.05)
    for copy in range(first, copies):
        batch = []
        for resource in replicate(originals, copy):
            batch.append(resource)
            if len(batch) == BATCH:
                _store_batch(store, batch)
                bar.update(len(batch))
                batch = []
        if batch:
            _store_batch(store, batch)
            bar.update(len(batch))
    bar.close()
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _store_batch(store: Store, batch: list[dict]) -> None:
    with store.session(write=True) as uow:
        for resource in batch:
            uow.create(resource)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "run"])
    parser.add_argument("--database", required=True)
    parser.add_argument("--copies", type=int, default=26, help="26 copies of 38,472 = 1,000,272 resources")
    args = parser.parse_args()
    store = Store(args.database)
    if args.command == "build":
        build(store, args.copies)


if __name__ == "__main__":
    main()
