"""Validation throughput over the Synthea 100-patient set: prints `validation: N resources/s`.

    .venv/bin/python bench/validation.py [path/to/synthea-r4-bulk-data-server-100p.tar.gz]

Each entry resource of every bundle is validated on its own (as a write would be); JSON parsing is
not timed. The best of three passes is reported.
"""
from __future__ import annotations

import json
import os
import sys
import tarfile
import time
from pathlib import Path

from ihs.fhir.validation import issues

DATA = Path(os.environ.get("IHS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ARCHIVE = DATA / "synthea-r4-bulk-data-server-100p.tar.gz"


def synthea_resources(path: Path) -> list[dict]:
    """Every resource of the archive: the entries of each bundle, and any bare resource."""
    resources = []
    with tarfile.open(path) as tar:
        for member in tar:
            if not member.name.endswith(".json"):
                continue
            doc = json.load(tar.extractfile(member))
            if doc.get("resourceType") == "Bundle":
                resources.extend(entry["resource"] for entry in doc.get("entry", []))
            else:
                resources.append(doc)
    return resources


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ARCHIVE
    resources = synthea_resources(path)
    issues(resources[0])  # compile the model outside the timing
    best = float("inf")
    invalid = 0
    for _ in range(3):
        start = time.perf_counter()
        invalid = sum(1 for resource in resources if issues(resource))
        best = min(best, time.perf_counter() - start)
    print(f"{len(resources)} resources, {invalid} invalid, {best:.2f} s")
    print(f"validation: {len(resources) / best:,.0f} resources/s")


if __name__ == "__main__":
    main()
