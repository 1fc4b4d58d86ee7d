"""Loading files of FHIR resources straight into the store.

Accepts transaction/batch Bundles, single resources (JSON), NDJSON, and .tar.gz/.tgz/.zip
archives of them. Errors name the file, the entry and the element.
"""
from __future__ import annotations

import io
import tarfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import orjson
from tqdm import tqdm

from ihs.api import bundle as bundles
from ihs.api import interactions
from ihs.fhir.errors import FhirError
from ihs.store.store import Store


@dataclass
class LoadReport:
    counts: Counter = field(default_factory=Counter)  # resource type -> resources stored
    errors: list[str] = field(default_factory=list)


def documents(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, content) of every JSON or NDJSON document in a file, folder or archive."""
    name = str(path)
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file():
                yield from documents(child)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as archive:
            for member in sorted(archive.getmembers(), key=lambda m: m.name):
                if member.isfile() and member.name.endswith((".json", ".ndjson")):
                    yield f"{name}:{member.name}", archive.extractfile(member).read()
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for member in sorted(archive.namelist()):
                if member.endswith((".json", ".ndjson")):
                    yield f"{name}:{member}", archive.read(member)
    elif name.endswith((".json", ".ndjson")):
        yield name, path.read_bytes()


def _resources_in(name: str, content: bytes) -> Iterator[tuple[str, dict]]:
    """(where, resource) for each top-level document: a whole Bundle or one resource per NDJSON line."""
    if name.endswith(".ndjson"):
        for number, line in enumerate(io.BytesIO(content), 1):
            if line.strip():
                yield f"{name} line {number}", orjson.loads(line)
    else:
        yield name, orjson.loads(content)


def _size(document: dict) -> int:
    if document.get("resourceType") == "Bundle" and document.get("type") in ("transaction", "batch"):
        return len(document.get("entry") or [])
    return 1


def load(store: Store, paths: list[Path], *, progress: bool = True) -> LoadReport:
    """Load every document under `paths`; one failed document does not stop the others."""
    report = LoadReport()
    docs = [(name, content) for path in paths for name, content in documents(Path(path))]
    bar = tqdm(total=len(docs), unit="file", disable=not progress, desc="loading")
    for name, content in docs:
        try:
            for where, document in _resources_in(name, content):
                _load_document(store, where, document, report)
        except orjson.JSONDecodeError as exc:
            report.errors.append(f"{name}: not valid JSON: {exc}")
        bar.update(1)
        bar.set_postfix(resources=sum(report.counts.values()), errors=len(report.errors))
    bar.close()
    return report


def _load_document(store: Store, where: str, document: dict, report: LoadReport) -> None:
    try:
        if document.get("resourceType") == "Bundle" and document.get("type") in ("transaction", "batch"):
            response = bundles.process(store, document)
            for index, entry in enumerate(response["entry"]):
                status = entry["response"]["status"]
                if status.startswith("2"):
                    location = entry["response"].get("location") or entry.get("fullUrl") or ""
                    report.counts[location.split("/")[0]] += 1
                else:
                    issues = entry["response"].get("outcome", {}).get("issue", [])
                    report.errors.append(f"{where}: " + "; ".join(i.get("diagnostics", "") for i in issues))
            return
        res_type = document.get("resourceType")
        with store.session(write=True) as uow:
            if document.get("id"):
                interactions.update(uow, res_type, document["id"], document)
            else:
                interactions.create(uow, res_type, document)
        report.counts[res_type] += 1
    except FhirError as exc:
        details = "; ".join(f"{i.diagnostics}" + (f" (at {i.expression})" if i.expression else "") for i in exc.issues)
        report.errors.append(f"{where}: {details}")
