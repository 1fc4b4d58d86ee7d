"""Running a view over the store (for some patients, or changed since an instant) or over given resources."""
from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator

from ihs.analytics.compartment import group_patients, patients_of
from ihs.analytics.source import store_resources
from ihs.analytics.viewdef import View
from ihs.store.store import Store


def view_resources(store: Store, view: View, *, patients: Iterable[str] = (), groups: Iterable[str] = (),
                   since: int | None = None) -> Iterator[dict]:
    """The stored resources of the view's type, narrowed to the compartments of `patients` and Group members."""
    wanted = set(patients)
    groups = list(groups)
    if groups:
        with store.session() as uow:
            for group_id in groups:
                wanted |= group_patients(uow, group_id)
    narrowed = bool(wanted) or bool(groups)
    for stored in store_resources(store, view.resource, since=since):
        resource = stored.resource()
        if narrowed and not (patients_of(resource) & wanted):
            continue
        yield resource


def view_rows(view: View, resources: Iterable[dict], limit: int | None = None) -> Iterator[tuple]:
    """The view's rows over `resources`, at most `limit` of them."""
    rows = (row for resource in resources for row in view.rows(resource))
    return islice(rows, limit) if limit is not None else rows
