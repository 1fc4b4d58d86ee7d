"""Index extraction throughput on one core, over the 100-patient Synthea data.

    .venv/bin/python bench/indexing.py [--passes 3]

Reads every resource of the Synthea transaction bundles (38,970, plus the 407 organizations
and practitioners), rewrites their urn:uuid references to Type/id as a transaction does before
indexing, compiles the extractors once, then times `extract` over all resources and prints
`indexing: N resources/s` (best pass), and how many (type, param) pairs use the fast path.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tarfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ihs.fhir.indexing import extract, extractors  # noqa: E402
from ihs.fhir.searchparams import registry  # noqa: E402

DATA = Path(os.environ.get("IHS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SYNTHEA = DATA / "synthea-r4-bulk-data-server-100p.tar.gz"


def _rewrite(value, targets: dict[str, str]):
    if isinstance(value, dict):
        return {k: (targets.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, targets))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, targets) for v in value]
    return value


def synthea_resources() -> list[dict]:
    """Every resource of the Synthea bundles, with bundle-local references resolved to Type/id."""
    resources, targets = [], {}
    with tarfile.open(SYNTHEA) as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".json"):
                for entry in orjson.loads(archive.extractfile(member).read()).get("entry", ()):
                    resource = entry["resource"]
                    targets[entry.get("fullUrl")] = f"{resource['resourceType']}/{resource['id']}"
                    resources.append(resource)
    return [_rewrite(r, targets) for r in resources]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    if not SYNTHEA.exists():
        sys.exit(f"{SYNTHEA} is missing (set IHS_SHARED_DATA)")
    resources = synthea_resources()
    reg = registry()

    started = time.perf_counter()
    compiled = [e for t in reg.resource_types() for e in extractors(t, reg)]
    compile_seconds = time.perf_counter() - started
    fast = sum(e.fast for e in compiled)
    present = {r["resourceType"] for r in resources}
    used = [e for e in compiled if e.param.resource_type in present]

    rates, rows = [], 0
    for _ in range(args.passes):
        started = time.perf_counter()
        rows = sum(sum(len(t) for _, t in extract(r).tables()) for r in resources)
        rates.append(len(resources) / (time.perf_counter() - started))

    print(f"indexing: {max(rates):,.0f} resources/s (best of {args.passes} passes over {len(resources):,} "
          f"resources, median {statistics.median(rates):,.0f}; {rows / len(resources):.1f} rows per resource)")
    print(f"extractors: {fast} of {len(compiled)} (type, param) pairs on the fast path "
          f"({100 * fast / len(compiled):.2f}%), {len(compiled) - fast} through fhirpathpy; "
          f"compiled in {compile_seconds:.2f}s")
    slow = ", ".join(f"{e.param.resource_type}.{e.param.code}" for e in used if not e.fast) or "none"
    print(f"synthea types: {sum(e.fast for e in used)} of {len(used)} pairs of the {len(present)} types present "
          f"on the fast path; fhirpathpy: {slow}")


if __name__ == "__main__":
    main()
