"""References to a Patient anywhere in a resource: finding them through search and re-pointing them."""
from __future__ import annotations

from ihs.fhir.definitions import compartments
from ihs.store import search
from ihs.store.store import StoredResource, UnitOfWork

MAX_REFERRING = 10_000


def referring(uow: UnitOfWork, patient_id: str) -> list[StoredResource]:
    """Current resources that reference Patient/`patient_id` by a Patient compartment parameter."""
    found: dict[tuple[str, str], StoredResource] = {}
    for res_type, params in sorted(compartments()["Patient"].items()):
        if res_type in ("AuditEvent", "Provenance"):
            continue  # records of what happened are never rewritten, a merge included
        for param in params:
            if param == "{def}":
                continue
            for stored in search.find(uow, res_type, [(param, f"Patient/{patient_id}")], limit=MAX_REFERRING):
                found.setdefault((stored.type, stored.id), stored)
    return [stored for key, stored in sorted(found.items()) if key != ("Patient", patient_id)]


def _points_to(reference: str, patient_id: str) -> bool:
    tail = reference.split("/_history/")[0]
    return tail == f"Patient/{patient_id}" or tail.endswith(f"/Patient/{patient_id}")


def reference_paths(node, patient_id: str, path: tuple = ()) -> list[tuple]:
    """Paths (keys and indexes) of every Reference.reference naming Patient/`patient_id`."""
    paths = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and _points_to(value, patient_id):
                paths.append(path + (key,))
            else:
                paths.extend(reference_paths(value, patient_id, path + (key,)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            paths.extend(reference_paths(item, patient_id, path + (i,)))
    return paths


def get_path(node, path: tuple):
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def set_path(node, path: tuple, value) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def repoint(resource: dict, old_id: str, new_id: str) -> int:
    """Point every reference to Patient/`old_id` at Patient/`new_id` in place; answers how many changed."""
    paths = reference_paths(resource, old_id)
    for path in paths:
        set_path(resource, path, f"Patient/{new_id}")
    return len(paths)
