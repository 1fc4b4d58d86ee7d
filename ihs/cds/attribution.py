"""Who wrote a prescription and at which facility: the keys supervision counts by."""
from __future__ import annotations

MAX_DEPTH = 4  # a department is part of a hospital; a hospital is the facility


def prescriber_of(request: dict, resolve) -> str | None:
    """The prescribing Practitioner as "Practitioner/id" (through a PractitionerRole when need be)."""
    ref = (request.get("requester") or {}).get("reference")
    if not ref:
        return None
    if ref.startswith("PractitionerRole/"):
        role = resolve({"reference": ref}) or {}
        return (role.get("practitioner") or {}).get("reference") or ref
    return ref


def facility_of(request: dict, resolve) -> str | None:
    """The top-level Organization the prescription was written at, as "Organization/id".

    The encounter's service provider, else the prescriber's role's organization, followed up
    `partOf` from a department to its hospital.
    """
    org = None
    encounter = resolve(request["encounter"]) if (request.get("encounter") or {}).get("reference") else None
    if encounter:
        org = (encounter.get("serviceProvider") or {}).get("reference")
    if not org and ((request.get("requester") or {}).get("reference") or "").startswith("PractitionerRole/"):
        org = ((resolve(request["requester"]) or {}).get("organization") or {}).get("reference")
    for _ in range(MAX_DEPTH):
        if not org:
            return None
        parent = ((resolve({"reference": org}) or {}).get("partOf") or {}).get("reference")
        if not parent:
            return org
        org = parent
    return org
