"""Build the compact FHIR R4 (4.0.1) definitions shipped in ihs/fhir/definitions/.

Reads the official HL7 packages in ../shared/data (in place, never copied) and writes gzip'd JSON:

- structures.json.gz         the element model of every resource type and complex datatype
- valuesets.json.gz          every pre-expanded ValueSet: url -> [[system, code, display, parent?], ...]
- search-parameters.json.gz  the official SearchParameters, reduced to the fields search needs
- compartments.json.gz       compartment type -> resource type -> param codes

Run it only to regenerate the committed files:

    .venv/bin/python scripts/build_definitions.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "ihs" / "fhir" / "definitions"
DEFAULT_DATA = Path(os.environ.get("IHS_SHARED_DATA", ROOT.parent / "shared" / "data"))

EXAMPLES = "hl7.fhir.r4.examples-4.0.1.tgz"
EXPANSIONS = "hl7.fhir.r4.expansions-4.0.1.tgz"
SEARCH_PARAMETERS = "fhir-r4-search-parameters.json.gz"

SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
OPEN_EXPANSION_EXTS = (
    "http://hl7.org/fhir/StructureDefinition/valueset-toocostly",
    "http://hl7.org/fhir/StructureDefinition/valueset-unclosed",
)
SEARCH_FIELDS = ("resourceType", "id", "url", "code", "base", "type", "expression", "target", "multipleOr",
                 "multipleAnd", "comparator", "modifier", "chain", "component")


def read_package(path: Path, prefix: str) -> dict[str, dict]:
    """The JSON files of a FHIR package whose names start with `prefix`, by file name."""
    found = {}
    with tarfile.open(path) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and name.startswith(prefix) and name != "package.json":
                found[name] = json.load(tar.extractfile(member))
    return found


# -- structures --------------------------------------------------------------------------------

def element_type_code(element: dict, type_: dict) -> str:
    """The FHIR type of one element type, resolving FHIRPath System types through the fhir-type extension."""
    code = type_["code"]
    if not code.startswith("http://hl7.org/fhirpath/System."):
        return code
    if element.get("base", {}).get("path") == "Resource.id":
        # the 4.0.1 snapshots say string, the spec's Resource page says id: a logical id is an `id`
        return "id"
    for ext in type_.get("extension", []):
        if ext["url"] == FHIR_TYPE_EXT:
            return ext["valueUrl"]
    return "string"


def compile_structure(sd: dict, sd_types: dict[str, str], constrained: set[str]) -> dict[str, dict]:
    """One StructureDefinition's snapshot as {type key: {json name: element}}.

    The type key is the type's name for the root and the element path for inline (backbone) children;
    choice elements are expanded to one json name per allowed type (value[x] -> valueQuantity, ...).
    """
    root = sd["id"] if sd["derivation"] == "constraint" else sd["type"]
    elements = [e for e in sd["snapshot"]["element"] if e.get("max") != "0" and "sliceName" not in e]
    paths = {e["path"] for e in elements}
    # inline children are keyed by their path; the constrained (profiled) root by the profile's id
    key_of = {sd["type"]: root}
    types: dict[str, dict] = {root: {}}
    for e in elements:
        path = e["path"]
        if "." not in path:
            continue
        parent, name = path.rsplit(".", 1)
        if parent not in key_of:
            continue  # a child of an element the profile removed (max 0)
        owner = types[key_of[parent]]
        spec = {}
        if e.get("min", 0):
            spec["min"] = e["min"]
        if e.get("max", "1") != "1":
            spec["max"] = e["max"]
        if e.get("isSummary"):
            spec["summary"] = True  # what _summary=true keeps
        binding = e.get("binding", {})
        if binding.get("strength") == "required" and binding.get("valueSet"):
            spec["binding"] = binding["valueSet"].split("|", 1)[0]
        if "contentReference" in e:
            owner[name] = {"type": e["contentReference"].lstrip("#"), **spec}
            continue
        if any(p.startswith(path + ".") for p in paths) and e["type"][0]["code"] in ("BackboneElement", "Element"):
            key_of[path] = path
            types[path] = {}
            owner[name] = {"type": path, **spec}
            continue
        choices = e["type"]
        for type_ in choices:
            code = model = element_type_code(e, type_)
            for profile in type_.get("profile", []):
                if profile.startswith(SD_PREFIX) and profile[len(SD_PREFIX):] in constrained:
                    model = profile[len(SD_PREFIX):]
            item = {"type": model, **spec}
            targets = [sd_types.get(p, p.rsplit("/", 1)[-1]) for p in type_.get("targetProfile", [])]
            if code == "Reference" and targets and "Resource" not in targets:
                item["targets"] = sorted(set(targets))
            if name.endswith("[x]"):
                base = name[:-3]
                item["choice"] = base
                owner[base + code[0].upper() + code[1:]] = item
            else:
                owner[name] = item
    return types


def build_structures(sds: dict[str, dict]) -> dict:
    """The element model of every resource type, complex datatype and constrained datatype (SimpleQuantity)."""
    by_url = {sd["url"]: sd for sd in sds.values()}
    sd_types = {url: sd["type"] for url, sd in by_url.items()}
    kinds = ("resource", "complex-type")
    base = [sd for sd in by_url.values()
            if sd["kind"] in kinds and sd.get("derivation") == "specialization" and not sd.get("abstract")]
    # datatype profiles the base definitions name on an element's type (SimpleQuantity)
    constrained = {p[len(SD_PREFIX):] for sd in base for e in sd["snapshot"]["element"] for t in e.get("type", [])
                   for p in t.get("profile", []) if by_url.get(p, {}).get("kind") == "complex-type"}
    types: dict[str, dict] = {}
    for sd in sorted(base, key=lambda s: s["type"]):
        types.update(compile_structure(sd, sd_types, constrained))
    for name in sorted(constrained):
        types.update(compile_structure(by_url[SD_PREFIX + name], sd_types, constrained))
    primitives = {}
    for sd in sorted(by_url.values(), key=lambda s: s["type"]):
        if sd["kind"] != "primitive-type":
            continue
        value = next(e for e in sd["snapshot"]["element"] if e["path"] == sd["type"] + ".value")
        regex = next((x["valueString"] for t in value["type"] for x in t.get("extension", [])
                      if x["url"] == REGEX_EXT), None)
        primitives[sd["type"]] = {"regex": regex}
    resources = sorted(sd["type"] for sd in base if sd["kind"] == "resource")
    return {"fhirVersion": "4.0.1", "resources": resources, "primitives": primitives, "types": types}


# -- value sets --------------------------------------------------------------------------------

def code_system_parents(code_systems: dict[str, dict]) -> dict[str, dict[str, str]]:
    """system url -> {code: parent code} from nested concepts and `parent`/`child` properties."""
    parents: dict[str, dict[str, str]] = {}
    for cs in code_systems.values():
        found: dict[str, str] = {}

        def walk(concepts, parent=None):
            for concept in concepts:
                if parent is not None:
                    found.setdefault(concept["code"], parent)
                for prop in concept.get("property", []):
                    if prop["code"] == "parent" and "valueCode" in prop:
                        found.setdefault(concept["code"], prop["valueCode"])
                    elif prop["code"] == "child" and "valueCode" in prop:
                        found.setdefault(prop["valueCode"], concept["code"])
                walk(concept.get("concept", []), concept["code"])

        walk(cs.get("concept", []))
        if found:
            parents[cs["url"]] = found
    return parents


def is_open(vs: dict, defined_systems: set[str]) -> bool:
    """True when the stored expansion may not list every code (too costly, unclosed, or a whole external system)."""
    expansion = vs.get("expansion", {})
    if any(x["url"] in OPEN_EXPANSION_EXTS and x.get("valueBoolean") for x in expansion.get("extension", [])):
        return True
    if not expansion.get("contains"):
        return True
    for include in vs.get("compose", {}).get("include", []):
        whole = "system" in include and "concept" not in include and "filter" not in include
        if whole and include["system"] not in defined_systems:
            return True
    return False


def build_valuesets(expansions: dict[str, dict], code_systems: dict[str, dict]) -> dict:
    """Every expansion as url -> [[system, code, display, parent?]], plus the urls whose expansion is open."""
    parents = code_system_parents(code_systems)
    defined = {cs["url"] for cs in code_systems.values() if cs.get("content") == "complete"}
    # the package holds some value sets twice (with and without .json); prefer the later (unsuffixed) file
    chosen: dict[str, dict] = {}
    for name in sorted(expansions, key=lambda n: n.endswith(".json")):
        vs = expansions[name]
        chosen.setdefault(vs["url"], vs)
    out, open_urls = {}, []
    for url in sorted(chosen):
        vs = chosen[url]
        rows = []

        def walk(contains, parent=None):
            for c in contains:
                if "code" in c:
                    row = [c.get("system"), c["code"], c.get("display")]
                    up = parent or parents.get(c.get("system"), {}).get(c["code"])
                    if up:
                        row.append(up)
                    rows.append(row)
                walk(c.get("contains", []), c.get("code"))

        walk(vs.get("expansion", {}).get("contains", []))
        out[url] = rows
        if is_open(vs, defined):
            open_urls.append(url)
    return {"valuesets": out, "open": open_urls}


# -- search parameters and compartments --------------------------------------------------------

def build_search_parameters(bundle: dict) -> list[dict]:
    """The SearchParameter resources of the official bundle, keeping only the fields search needs."""
    params = []
    for entry in bundle["entry"]:
        sp = entry["resource"]
        reduced = {k: sp[k] for k in SEARCH_FIELDS if k in sp}
        if "component" in reduced:
            reduced["component"] = [{"definition": c["definition"], "expression": c["expression"]}
                                    for c in reduced["component"]]
        params.append(reduced)
    return params


def build_compartments(definitions: dict[str, dict]) -> dict[str, dict[str, list[str]]]:
    """compartment code (Patient, Encounter, ...) -> resource type -> the param codes that link it."""
    out = {}
    for cd in sorted(definitions.values(), key=lambda c: c["code"]):
        if cd.get("url", "").endswith("/example"):
            continue
        out[cd["code"]] = {r["code"]: r["param"] for r in cd.get("resource", []) if r.get("param")}
    return out


# -- output ------------------------------------------------------------------------------------

def write_gz(name: str, data) -> int:
    """Write `data` as compact gzip'd JSON (reproducible: no timestamp) and return its size in bytes."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    (OUT / name).write_bytes(buf.getvalue())
    return len(buf.getvalue())


LICENSE = """# FHIR R4 definitions

The files in this folder are derived from the HL7 FHIR Release 4 (4.0.1) specification,
published by HL7 International under the Creative Commons "No Rights Reserved" licence
(CC0 1.0, https://creativecommons.org/publicdomain/zero/1.0/). FHIR is a registered
trademark of HL7 and is used with permission.

They are regenerated by `scripts/build_definitions.py`:

| file | derived from |
|---|---|
| structures.json.gz | the StructureDefinitions (snapshots) of `hl7.fhir.r4.examples` 4.0.1 (`package/StructureDefinition-*.json`): resource types, complex datatypes, SimpleQuantity and the primitive types' regexes |
| valuesets.json.gz | the pre-expanded ValueSets of `hl7.fhir.r4.expansions` 4.0.1 (`package/ValueSet-*`); parent codes from the CodeSystems of `hl7.fhir.r4.examples` 4.0.1 |
| search-parameters.json.gz | the official R4 `search-parameters.json` Bundle (http://hl7.org/fhir/R4/search-parameters.json) |
| compartments.json.gz | the CompartmentDefinitions of `hl7.fhir.r4.examples` 4.0.1 (`package/CompartmentDefinition-*.json`) |
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the HL7 packages")
    args = parser.parse_args(argv)
    examples = args.data / EXAMPLES
    sds = read_package(examples, "StructureDefinition-")
    code_systems = read_package(examples, "CodeSystem-")
    compartments = read_package(examples, "CompartmentDefinition-")
    expansions = read_package(args.data / EXPANSIONS, "ValueSet-")
    with gzip.open(args.data / SEARCH_PARAMETERS) as f:
        bundle = json.load(f)
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = {
        "structures.json.gz": write_gz("structures.json.gz", build_structures(sds)),
        "valuesets.json.gz": write_gz("valuesets.json.gz", build_valuesets(expansions, code_systems)),
        "search-parameters.json.gz": write_gz("search-parameters.json.gz", build_search_parameters(bundle)),
        "compartments.json.gz": write_gz("compartments.json.gz", build_compartments(compartments)),
    }
    (OUT / "LICENSE.md").write_text(LICENSE)
    for name, size in sizes.items():
        print(f"{name}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
