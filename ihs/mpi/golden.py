"""Golden records: one Patient per person, built from the source records linked to it.

A golden record carries the `golden` tag, a `seealso` link to each source record and the best
of their demographics (survivorship): every distinct identifier, name and phone, the birth date
and sex most sources agree on, the address of the most recently updated source. Sources point
to it with a `refer` link; a golden record merged into another gets `replaced-by`.
"""
from __future__ import annotations

from collections import Counter

from ihs.fhir.validation import validate
from ihs.mpi.features import GOLDEN_TAG
from ihs.store.store import StoredResource, UnitOfWork

ASSURANCE = "https://ihs.example.org/fhir/StructureDefinition/mpi-link-assurance"


def _last_updated(patient: dict) -> str:
    return (patient.get("meta") or {}).get("lastUpdated") or ""


def _distinct(items, key) -> list:
    seen, out = set(), []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _most_common(values: list):
    values = [v for v in values if v]
    return Counter(values).most_common(1)[0][0] if values else None


def golden_resource(golden_id: str, sources: list[dict]) -> dict:
    """The golden record of a person from its source Patients (any order)."""
    sources = sorted(sources, key=_last_updated, reverse=True)
    golden: dict = {"resourceType": "Patient", "id": golden_id, "meta": {"tag": [dict(GOLDEN_TAG)]}, "active": True}
    identifiers = _distinct((i for s in sources for i in s.get("identifier") or []),
                            lambda i: (i.get("system"), i.get("value")))
    if identifiers:
        golden["identifier"] = identifiers
    names = _distinct((n for s in sources for n in s.get("name") or []),
                      lambda n: (n.get("family"), tuple(n.get("given") or ()), n.get("text")))
    if names:
        golden["name"] = names
    telecom = _distinct((t for s in sources for t in s.get("telecom") or []),
                        lambda t: (t.get("system"), t.get("value")))
    if telecom:
        golden["telecom"] = telecom
    gender = _most_common([s.get("gender") for s in sources])
    if gender:
        golden["gender"] = gender
    birth = _most_common([s.get("birthDate") for s in sources])
    if birth:
        golden["birthDate"] = birth
    address = next((s["address"] for s in sources if s.get("address")), None)
    if address:
        golden["address"] = address
    golden["link"] = [{"other": {"reference": f"Patient/{s['id']}"}, "type": "seealso"}
                      for s in sorted(sources, key=lambda s: s["id"])]
    return golden


def source_link(golden_id: str, assurance: str = "auto") -> dict:
    """A source record's link to its golden record; `assurance` is auto (matched) or manual (a steward)."""
    return {"extension": [{"url": ASSURANCE, "valueCode": assurance}],
            "other": {"reference": f"Patient/{golden_id}"}, "type": "refer"}


def link_assurance(patient: dict) -> str | None:
    """How the record's link to its golden record was made (auto, manual), or None when unlinked."""
    for link in patient.get("link") or []:
        if link.get("type") == "refer":
            for extension in link.get("extension") or []:
                if extension.get("url") == ASSURANCE:
                    return extension.get("valueCode")
            return "manual"  # a link set by hand, outside the index
    return None


def _comparable(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("meta", "id")} | {
        "tags": (resource.get("meta") or {}).get("tag")}


_UNREAD = object()


def save(uow: UnitOfWork, resource: dict, current=_UNREAD) -> StoredResource | None:
    """Create or update `resource` unless the stored version already says the same; answers the new version.

    `current` is its current version when the caller has it (None: it does not exist yet)."""
    if current is _UNREAD:
        current = uow.current(resource["resourceType"], resource["id"])
    if current is None:
        validate(resource)
        return uow.create(resource)
    if not current.deleted and _comparable(current.resource()) == _comparable(resource):
        return None
    validate(resource)
    return uow.update(resource, current)


def with_link(patient: dict, golden_id: str | None, assurance: str = "auto") -> dict:
    """The source Patient with its refer link set to `golden_id` (or removed when None)."""
    links = [link for link in patient.get("link") or [] if link.get("type") != "refer"]
    if golden_id:
        links.append(source_link(golden_id, assurance))
    updated = {k: v for k, v in patient.items() if k != "link"}
    if links:
        updated["link"] = links
    return updated
