"""Small helpers for the search tests: store resources with known ids, search by query string."""
from __future__ import annotations

from urllib.parse import parse_qsl

from ihs.store.search import search


def put(store, *resources: dict) -> None:
    """Store `resources` (each with its id) in one unit of work."""
    with store.session(write=True) as uow:
        for resource in resources:
            uow.create(dict(resource))


def ids(store, res_type: str | None, query: str, **options) -> list[str]:
    """The ids of the first page of matches, in order."""
    with store.session() as uow:
        return [m.id for m in search(uow, res_type, parse_qsl(query, keep_blank_values=True), **options).matches]


def found(store, res_type: str | None, query: str, **options) -> set[str]:
    return set(ids(store, res_type, query, **options))


def result(store, res_type: str | None, query: str, **options):
    with store.session() as uow:
        return search(uow, res_type, parse_qsl(query, keep_blank_values=True), **options)
