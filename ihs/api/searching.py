"""The search interactions' answer: a searchset Bundle with paging links, includes and outcomes.

Type search (GET/POST [type]), system search (GET [base]?_type=...) and compartment search
(GET Patient/123/Observation) all run `ihs.store.search.search` under the caller's search
restriction (the access policy inside the SQL: hidden resources are neither matched, counted nor
included); this module shapes its result:
absolute self/first/previous/next/last links, `_summary` and `_elements`, and an OperationOutcome
entry (search.mode "outcome") for what lenient handling ignored or what is not indexed yet.
"""
from __future__ import annotations

from functools import cache
from urllib.parse import urlencode

from ihs.api import interactions, security
from ihs.fhir.definitions import compartments, structures
from ihs.fhir.errors import FhirError, operation_outcome
from ihs.store import search
from ihs.store.search import SearchResult
from ihs.store.store import StoredResource, UnitOfWork

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}
_ALWAYS = ("resourceType", "id", "meta")


def search_bundle(uow: UnitOfWork, res_type: str | None, query: list[tuple[str, str]], *, base: str,
                  lenient: bool = False) -> dict:
    """Search one resource type, or every type (`res_type` None, narrowed by `_type`), as a Bundle."""
    if res_type is not None:
        interactions.check_type(res_type)
    result = search.search(uow, res_type, query, base=base or None, lenient=lenient,
                           restriction=security.search_restriction(uow, res_type, query))
    path = f"{base}/{res_type}" if res_type else f"{base}/"
    return _bundle(result, path, base)


def compartment_bundle(uow: UnitOfWork, compartment: str, compartment_id: str, res_type: str,
                       query: list[tuple[str, str]], *, base: str, lenient: bool = False) -> dict:
    """Search `res_type` (or `*`: every type) within a compartment, e.g. Patient/123/Observation."""
    interactions.check_type(compartment)
    interactions.check_id(compartment_id)
    definition = compartments().get(compartment)
    if definition is None:
        raise FhirError(f"{compartment} is not a compartment; compartments are {', '.join(sorted(compartments()))}",
                        404, code="not-found")
    if res_type == "*":
        types = sorted(definition)
    else:
        interactions.check_type(res_type)
        if res_type not in definition:
            raise FhirError(f"{res_type} resources are never in a {compartment} compartment", 400,
                            code="not-supported")
        types = [res_type]
    searched = None if res_type == "*" else res_type
    restriction = security.search_restriction(uow, searched, query, (compartment, compartment_id))
    result = search.search(uow, searched, query, base=base or None, lenient=lenient,
                           compartment=(compartment, compartment_id), compartment_types=types,
                           restriction=restriction)
    return _bundle(result, f"{base}/{compartment}/{compartment_id}/{res_type}", base)


# ---------------------------------------------------------------------------- the Bundle

def _bundle(result: SearchResult, path: str, base: str) -> dict:
    controls = result.parsed.controls
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = _links(result, path)
    entries = [_entry(m, "match", base, controls.summary, controls.elements) for m in result.matches]
    entries += [_entry(i, "include", base, controls.summary, None) for i in result.included]
    if result.warnings:
        entries.append({"resource": operation_outcome(result.warnings), "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(stored: StoredResource, mode: str, base: str, summary: str | None, elements: list[str] | None) -> dict:
    resource = stored.resource()
    if summary in ("true", "text", "data"):
        resource = summarize(resource, summary)
    elif elements is not None:
        resource = select_elements(resource, elements)
    path = f"{stored.container}#{stored.id}" if stored.container else f"{stored.type}/{stored.id}"
    full_url = f"{base}/{path}" if base else path
    return {"fullUrl": full_url, "resource": resource, "search": {"mode": mode}}


def _written(result: SearchResult) -> list[tuple[str, str]]:
    """The query as the engine understood it: kept criteria and result parameters, for paging links."""
    parsed = result.parsed
    pairs = [(c.name, c.value) for c in parsed.criteria[parsed.types[0]]] if parsed.types else []
    controls = parsed.controls
    pairs += [(n, v) for n, v in controls.written if n not in ("_sort", "_count")]
    if controls.sort:
        pairs.append(("_sort", ",".join(("-" if desc else "") + code for code, desc in controls.sort)))
    pairs.append(("_count", str(controls.count)))
    return pairs


def _links(result: SearchResult, path: str) -> list[dict]:
    pairs = _written(result)
    count, offset = result.count, result.offset

    def url(at: int) -> str:
        query = pairs + ([("_offset", str(at))] if at else [])
        return f"{path}?{urlencode(query)}"

    served = len(result.matches)
    links = [{"relation": "self", "url": url(offset)}, {"relation": "first", "url": url(0)}]
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - max(count, 1)))})
    if result.has_next:
        links.append({"relation": "next", "url": url(offset + served)})
    if result.total is not None and count > 0:
        last = max(0, (result.total - 1) // count * count) if result.total else 0
        if last >= offset:
            links.append({"relation": "last", "url": url(last)})
    return links


# ---------------------------------------------------------------------------- _summary, _elements

def _elements_of(res_type: str) -> dict:
    return structures()["types"].get(res_type, {})


def _mandatory(res_type: str) -> set[str]:
    return {name for name, element in _elements_of(res_type).items() if element.get("min", 0) >= 1}


def _tag_subsetted(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = tags + [SUBSETTED]
    resource["meta"] = meta
    return resource


def _keep(resource: dict, names: set[str]) -> dict:
    kept = {k: v for k, v in resource.items() if k in names or k.lstrip("_") in names}
    return _tag_subsetted(kept)


@cache
def _has_summary_flags() -> bool:
    return any(e.get("summary") for e in _elements_of("Patient").values())


def summarize(resource: dict, mode: str) -> dict:
    """The resource as `_summary=true|text|data` returns it (http://hl7.org/fhir/R4/search.html#summary)."""
    res_type = resource["resourceType"]
    if mode == "data":
        return _tag_subsetted({k: v for k, v in resource.items() if k != "text"})
    if mode == "text":
        return _keep(resource, {*_ALWAYS, "text", *_mandatory(res_type)})
    flagged = {name for name, element in _elements_of(res_type).items() if element.get("summary")}
    if not _has_summary_flags():
        raise FhirError("_summary=true needs the isSummary flags of the R4 StructureDefinitions, which this "
                        "server's definitions do not carry; use _elements instead", code="not-supported")
    return _keep(resource, {*_ALWAYS, *flagged})


def select_elements(resource: dict, elements: list[str]) -> dict:
    """The resource reduced to the `_elements` asked for, plus id, meta and its mandatory elements."""
    res_type = resource["resourceType"]
    model = _elements_of(res_type)
    wanted = set(elements) | set(_ALWAYS) | _mandatory(res_type)
    # a choice element is asked for by its name without type (value -> valueQuantity)
    wanted |= {name for name, element in model.items() if element.get("choice") in elements}
    return _keep(resource, wanted)
