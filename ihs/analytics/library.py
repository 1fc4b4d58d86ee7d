"""ViewDefinitions stored as FHIR R4 Library resources.

ViewDefinition is not an R4 resource type, and the store accepts only valid R4 resources, so a
view is kept as a Library (a canonical resource, which the SQL-on-FHIR `$viewdefinition-run`
operation accepts in R4 mode): `Library.type` is `logic-library` with the text
"SQL-on-FHIR ViewDefinition", `Library.content[0]` holds the ViewDefinition JSON
(`contentType: application/json`, base64 `data`), and `url`, `name`, `title`, `status` and
`description` mirror the view's own, so `GET /Library?name=patient_demographics` finds it.
"""
from __future__ import annotations

import base64

import orjson

from ihs.analytics.viewdef import ViewError, compile_view
from ihs.fhir.errors import NotFound
from ihs.fhir.validation import validate
from ihs.store.search import find
from ihs.store.store import StoredResource, UnitOfWork

LIBRARY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/library-type"
VIEW_TEXT = "SQL-on-FHIR ViewDefinition"
_STATUSES = {"draft", "active", "retired", "unknown"}


def as_library(definition: dict) -> dict:
    """The Library resource that stores `definition` (validated as a view first)."""
    compile_view(definition)
    library = {"resourceType": "Library"}
    for key in ("url", "version", "name", "title", "description"):
        if isinstance(definition.get(key), str) and definition[key]:
            library[key] = definition[key]
    status = definition.get("status")
    library["status"] = status if status in _STATUSES else "active"
    library["type"] = {"coding": [{"system": LIBRARY_TYPE_SYSTEM, "code": "logic-library"}], "text": VIEW_TEXT}
    library["content"] = [{"contentType": "application/json", "title": definition.get("name") or "ViewDefinition",
                           "data": base64.b64encode(orjson.dumps(definition)).decode()}]
    return library


def view_of(library: dict) -> dict:
    """The ViewDefinition a Library stores; ViewError when it stores none."""
    for attachment in library.get("content", []):
        if attachment.get("contentType", "").split(";")[0] == "application/json" and attachment.get("data"):
            try:
                definition = orjson.loads(base64.b64decode(attachment["data"]))
            except (ValueError, orjson.JSONDecodeError):
                continue
            if isinstance(definition, dict) and (definition.get("resourceType") == "ViewDefinition"
                                                 or "select" in definition):
                return definition
    raise ViewError(f"Library/{library.get('id')} holds no ViewDefinition (an application/json attachment)",
                    "Library.content")


def save_view(uow: UnitOfWork, definition: dict) -> StoredResource:
    """Store a ViewDefinition as a new Library."""
    library = as_library(definition)
    validate(library)
    return uow.create(library)


def load_view(uow: UnitOfWork, library_id: str) -> dict:
    """The ViewDefinition stored in Library/`library_id`."""
    stored = uow.current("Library", library_id)
    if stored is None or stored.deleted:
        raise NotFound(f"Library/{library_id} is not known")
    return view_of(stored.resource())


def stored_views(uow: UnitOfWork, limit: int = 1000) -> dict[str, dict]:
    """Every stored ViewDefinition by its Library id."""
    views = {}
    for stored in find(uow, "Library", [("type", f"{LIBRARY_TYPE_SYSTEM}|logic-library")], limit=limit):
        try:
            views[stored.id] = view_of(stored.resource())
        except ViewError:
            continue
    return views
