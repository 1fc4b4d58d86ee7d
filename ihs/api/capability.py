"""The CapabilityStatement at /metadata, made from what the server actually implements."""
from __future__ import annotations

from functools import lru_cache

from ihs import __version__
from ihs.fhir import validation
from ihs.store import search

TYPE_INTERACTIONS = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                     "search-type"]


@lru_cache(maxsize=4)
def statement(base: str) -> dict:
    resources = []
    for res_type in sorted(validation.resource_types()):
        resources.append({
            "type": res_type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{res_type}",
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchParam": [{"name": code, "type": kind, **({"definition": url} if url else {})}
                            for code, kind, url in search.supported_params(res_type)],
        })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "IHS",
        "kind": "instance",
        "software": {"name": "IHS", "version": __version__},
        "implementation": {"description": "IHS regional smart-healthcare platform", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
        }],
    }
