"""The FHIR R4 (4.0.1) definitions shipped with IHS, loaded lazily and cached.

The files here are built by scripts/build_definitions.py from the official HL7 packages
(see LICENSE.md). Every loader returns shared, cached data: read it, never mutate it.
"""
from __future__ import annotations

import gzip
from functools import cache
from importlib import resources

import orjson


def _load(name: str):
    return orjson.loads(gzip.decompress(resources.files(__name__).joinpath(name).read_bytes()))


@cache
def structures() -> dict:
    """The element model of R4.

    {"resources": [type, ...], "primitives": {type: {"regex": ...}}, "types": {key: {json name: element}}}.

    A type key is a resource or datatype name ("Patient", "HumanName", "SimpleQuantity") or, for an inline
    backbone element, its path ("Patient.contact"). Each element is a dict with "type" (a primitive, a type
    key, "Resource" or "xhtml") and, where they differ from the defaults, "min" (0), "max" ("1"), "binding"
    (required ValueSet url), "targets" (Reference target resource types) and "choice" (the choice element's
    name without [x]; its json names carry the type, e.g. valueQuantity).
    """
    return _load("structures.json.gz")


@cache
def _valueset_file() -> dict:
    return _load("valuesets.json.gz")


def valuesets() -> dict[str, list[list]]:
    """Every pre-expanded R4 ValueSet: url -> [[system, code, display] or [system, code, display, parent code]]."""
    return _valueset_file()["valuesets"]


@cache
def open_valuesets() -> frozenset[str]:
    """Urls of value sets whose stored expansion may be incomplete (too costly, unclosed, external systems)."""
    return frozenset(_valueset_file()["open"])


@cache
def search_parameters() -> list[dict]:
    """The 1,375 official R4 SearchParameters with the fields search needs (url, code, base, type, expression,
    target, multipleOr, multipleAnd, comparator, modifier, chain, component; original field names)."""
    return _load("search-parameters.json.gz")


@cache
def compartments() -> dict[str, dict[str, list[str]]]:
    """The R4 CompartmentDefinitions: compartment type (Patient, Encounter, ...) -> resource type -> param codes."""
    return _load("compartments.json.gz")
