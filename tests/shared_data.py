"""Locating the external test data in ../shared/data, read in place."""
from __future__ import annotations

import os
import tarfile
from functools import lru_cache
from pathlib import Path

import orjson
import pytest


def _shared_data() -> Path:
    """IHS_SHARED_DATA, else ../shared/data beside the repository, else the workplace's /work/shared/data."""
    if os.environ.get("IHS_SHARED_DATA"):
        return Path(os.environ["IHS_SHARED_DATA"])
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.exists() else Path("/work/shared/data")


SHARED_DATA = _shared_data()


def shared_file(name: str) -> Path:
    """The path of a file in ../shared/data, or skip the test when the folder is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"external test data {path} is not present (clone ../shared beside the repository, "
                    "or set IHS_SHARED_DATA)")
    return path


DEFINITIONAL_CATEGORIES = {"Foundation.Conformance", "Foundation.Terminology"}
CATEGORY_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-category"


@lru_cache(maxsize=1)
def r4_examples() -> dict[str, dict]:
    """Every resource of HL7's R4 examples package, by file name."""
    resources = {}
    with tarfile.open(shared_file("hl7.fhir.r4.examples-4.0.1.tgz")) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name.endswith(".json") and name != "package.json":
                resources[name] = orjson.loads(tar.extractfile(member).read())
    return resources


def r4_definitional_types() -> set[str]:
    """Resource types whose StructureDefinition puts them in the Conformance or Terminology category."""
    found = set()
    for resource in r4_examples().values():
        if resource["resourceType"] == "StructureDefinition" and resource.get("kind") == "resource":
            categories = {x.get("valueString") for x in resource.get("extension", []) if x["url"] == CATEGORY_EXT}
            if categories & DEFINITIONAL_CATEGORIES:
                found.add(resource["type"])
    return found
