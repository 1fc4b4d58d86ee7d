"""De-identification of resources for research exports: pseudonyms, shifted dates, no free text, coarse places.

`Deidentifier(key).resource(resource)` walks a resource with the R4 element model and
- replaces every resource id and reference with a keyed hash (HMAC-SHA256 of `Type/id`), so the
  same patient has the same pseudonym in every export made with the key, and the key's holder
  alone can link a pseudonym back (resident ID numbers are too few for an unkeyed hash to hide);
- shifts every date, dateTime and instant by a number of days fixed per patient (from the key and
  the patient's id, within +-`MAX_SHIFT_DAYS`), so intervals within a patient's record stay true
  while calendar dates no longer match hospital or registry records;
- removes direct identifiers and free text: HumanName, ContactPoint, Identifier, Attachment,
  Annotation, Narrative, Signature, every markdown and every string element except coded displays
  and units; Reference.display too (it holds names);
- generalizes quasi-identifiers: an Address keeps country, state, city and district only, and a
  birth date keeps its (shifted) year, with ages over 89 top-coded to 90.

What it does not protect against: a rare combination of coded facts (a rare disease in a small
district) can still single a person out; release counts from such data through the differentially
private aggregates instead (ihs/analytics/privacy.py).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

from ihs.analytics.compartment import patients_of
from ihs.fhir.definitions import structures
from ihs.fhir.fhirpath_compile import parse_reference

MAX_SHIFT_DAYS = 180
TOP_CODED_AGE = 90
_DROPPED_TYPES = frozenset({"HumanName", "ContactPoint", "Identifier", "Attachment", "Annotation", "Narrative",
                            "Signature", "markdown", "xhtml"})
_KEPT_STRINGS = frozenset({("Coding", "display"), ("Quantity", "unit"), ("Age", "unit"), ("Duration", "unit"),
                           ("Distance", "unit"), ("Count", "unit"), ("SimpleQuantity", "unit"),
                           ("MoneyQuantity", "unit"),
                           ("Address", "city"), ("Address", "district"), ("Address", "state"),
                           ("Address", "country")})
_ADDRESS_KEPT = frozenset({"use", "type", "city", "district", "state", "country"})
_DATES = frozenset({"date", "dateTime", "instant"})


def pseudonym_key(directory: Path) -> bytes:
    """The installation's pseudonym key: IHS_PSEUDONYM_KEY, else `<directory>/pseudonym.key` (made once)."""
    configured = os.environ.get("IHS_PSEUDONYM_KEY")
    if configured:
        return configured.encode()
    path = directory / "pseudonym.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


@cache
def _types() -> dict:
    return structures()["types"]


class Deidentifier:
    """De-identifies resources with one key (keep it secret: it links pseudonyms back)."""

    def __init__(self, key: bytes, today: date | None = None):
        self.key = key
        self.today = today or date.today()

    def pseudonym(self, res_type: str, res_id: str) -> str:
        return hmac.new(self.key, f"{res_type}/{res_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def shift_days(self, patient_id: str | None) -> int:
        if patient_id is None:
            return 0
        digest = hmac.new(self.key, f"date-shift/{patient_id}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") % (2 * MAX_SHIFT_DAYS + 1) - MAX_SHIFT_DAYS

    def resource(self, resource: dict) -> dict:
        """The de-identified copy of `resource`."""
        patients = sorted(patients_of(resource))
        shift = self.shift_days(patients[0] if patients else None)
        out = self._object(resource, resource["resourceType"], shift)
        if resource["resourceType"] == "Patient" and "birthDate" in out:
            out["birthDate"] = self._birth_year(out["birthDate"])
        return out

    # -- the walk ------------------------------------------------------------------------------

    def _object(self, obj: dict, type_key: str, shift: int) -> dict:
        elements = _types().get(type_key, {})
        out = {}
        for name, value in obj.items():
            if name == "resourceType":
                out[name] = value
                continue
            if name.startswith("_"):
                continue  # primitive extensions may carry the text removed from their primitive
            element = elements.get(name)
            kept = self._element(type_key, name, element, value, shift) if element else None
            if kept is not None and kept != []:
                out[name] = kept
        if type_key == "Address":
            out = {k: v for k, v in out.items() if k in _ADDRESS_KEPT}
        if type_key == "Extension" and set(out) <= {"url"}:
            return {}  # its value was removed: the bare url would say only that something was there
        if "resourceType" in obj and "id" in obj:
            out["id"] = self.pseudonym(obj["resourceType"], obj["id"])
        return out

    def _element(self, owner: str, name: str, element: dict, value, shift: int):
        kind = element["type"]
        if kind in _DROPPED_TYPES:
            return None
        if isinstance(value, list):
            return [v for v in (self._value(owner, name, kind, item, shift) for item in value) if v is not None]
        return self._value(owner, name, kind, value, shift)

    def _value(self, owner: str, name: str, kind: str, value, shift: int):
        if owner == "Reference" and name == "reference":
            return self._reference(value) if isinstance(value, str) else None
        if kind == "string":
            return value if (owner, name) in _KEPT_STRINGS else None
        if kind in _DATES and isinstance(value, str):
            return shift_date(value, shift)
        if kind == "Resource" and isinstance(value, dict):
            return self._object(value, value.get("resourceType", ""), shift)
        if isinstance(value, dict):
            out = self._object(value, kind, shift)
            if kind == "Reference":
                out.pop("display", None)
            return out or None
        return value

    def _reference(self, reference: str) -> str | None:
        if reference.startswith("#"):
            return reference
        res_type, res_id = parse_reference(reference)
        return f"{res_type}/{self.pseudonym(res_type, res_id)}" if res_type else None

    def _birth_year(self, birth_date: str) -> str:
        """The year only; anyone older than 89 is reported as born 90 years ago."""
        return str(max(int(birth_date[:4]), self.today.year - TOP_CODED_AGE))


def shift_date(value: str, days: int) -> str:
    """A FHIR date, dateTime or instant moved by `days`, at its own precision (a bare year stays)."""
    if not days or len(value) < 7:
        return value
    try:
        if len(value) == 7:
            moved = datetime.strptime(value + "-15", "%Y-%m-%d") + timedelta(days=days)
            return moved.strftime("%Y-%m")
        moved = datetime.strptime(value[:10], "%Y-%m-%d") + timedelta(days=days)
    except ValueError:
        return value
    return moved.strftime("%Y-%m-%d") + value[10:]
