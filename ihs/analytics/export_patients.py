"""Whose records a bulk export carried, collected resource by resource for its AuditEvents.

The patients of a resource are those of its Patient compartment (`compartment.patients_of`, the
definition searches and `Patient/x/*` use). Extracting them costs several times what writing the
resource out does, so the JSON text of a resource is first scanned for every `Patient/<id>` it
holds, a superset of its compartment's patients: when each is a patient already counted (the usual
case: a patient's records come many to a patient), the resource adds no one and is not parsed.
"""
from __future__ import annotations

import re

from ihs.analytics.compartment import patients_of
from ihs.store.store import StoredResource

# every "Patient/<id>" in the JSON text: a superset of the Patients its references name, relative or
# absolute, with or without _history
_PATIENT = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")


class ExportedPatients:
    """The patients of the resources `add`ed, and those of them shown only by break-the-glass.

    `emergency` maps a resource type to the patients the caller's restriction shows only by
    break-the-glass for it (`policy.break_glass_patients`).
    """

    def __init__(self, emergency: dict[str, frozenset[str]]):
        self.emergency = emergency
        self.patients: set[str] = set()
        self.break_glass: set[str] = set()

    def add(self, stored: StoredResource) -> None:
        named = _PATIENT.findall(stored.content)
        if stored.type == "Patient":
            named.append(stored.id)
        opened = self.emergency.get(stored.type)
        if self.patients.issuperset(named) and (not opened or self.break_glass.issuperset(opened.intersection(named))):
            return
        owners = patients_of(stored.resource()) if len(named) > 1 or stored.type != "Patient" else {stored.id}
        self.patients |= owners
        if opened:
            self.break_glass |= owners & opened
