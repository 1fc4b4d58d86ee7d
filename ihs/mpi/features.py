"""What the matcher compares: a Patient resource reduced to normalized features.

`person(patient)` reads names (hanzi and Latin), birth date, sex, the resident ID number, phones
and the home address of a FHIR R4 Patient. Golden records are never read as sources.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ihs.mpi import idnumber
from ihs.mpi.names import NameForm, has_hanzi, latin_key, name_form

GOLDEN_TAG = {"system": "https://ihs.example.org/fhir/CodeSystem/mpi-record", "code": "golden",
              "display": "Golden record of the master patient index"}
# identifier types that name a person across institutions (v2-0203): national and social security numbers
_NATIONAL_TYPES = {"NI", "SS", "NNCHN"}
# two-character family names; any other hanzi name starts with a one-character family name
_COMPOUND_SURNAMES = {"欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "司徒", "慕容", "夏侯", "尉迟", "长孙", "宇文"}
_DIGITS = re.compile(r"\d+")
_NON_DIGIT = re.compile(r"\D")


@dataclass(slots=True)
class Person:
    """The matching features of one source Patient."""

    id: str
    family: tuple[NameForm, ...] = ()
    given: tuple[NameForm, ...] = ()
    birth: str | None = None  # YYYYMMDD
    sex: str | None = None
    national_id: str | None = None
    national_id_valid: bool = False
    phones: tuple[str, ...] = ()
    house: str | None = None  # the numbers of the address lines, "12 3 1 102"
    street: str | None = None  # the first address line without numbers
    locality: str | None = None  # the further address lines without numbers
    city: str | None = None
    postcode: str | None = None
    state: str | None = None
    source: str | None = None  # the managing organization: one institution, one record per person


def is_golden(patient: dict) -> bool:
    tags = (patient.get("meta") or {}).get("tag") or []
    return any(t.get("system") == GOLDEN_TAG["system"] and t.get("code") == GOLDEN_TAG["code"] for t in tags)


def is_merged(patient: dict) -> bool:
    """True for a record merged into another (inactive, with a replaced-by link)."""
    return any(link.get("type") == "replaced-by" for link in patient.get("link") or [])


def person(patient: dict) -> Person:
    """The features of a Patient (missing or malformed elements are simply absent)."""
    p = Person(patient.get("id") or "")
    _read_names(p, patient.get("name") or [])
    birth = patient.get("birthDate") or ""
    if len(birth) == 10:
        p.birth = birth.replace("-", "")
    if patient.get("gender") in ("male", "female"):
        p.sex = patient["gender"]
    _read_identifiers(p, patient.get("identifier") or [])
    p.phones = tuple(dict.fromkeys(
        _phone(t.get("value", "")) for t in patient.get("telecom") or []
        if t.get("system") in ("phone", "sms", None) and _phone(t.get("value", ""))))
    addresses = patient.get("address") or []
    if addresses:
        home = next((a for a in addresses if a.get("use") == "home"), addresses[0])
        _read_address(p, home)
    organization = patient.get("managingOrganization") or {}
    p.source = organization.get("reference") or None
    return p


def _read_names(p: Person, names: list[dict]) -> None:
    families, givens = [], []
    for name in names:
        if name.get("use") in ("old", "anonymous", "maiden"):
            continue
        family, given = name.get("family"), " ".join(name.get("given") or [])
        if not family and not given and name.get("text"):
            family, given = _split_text(name["text"])
        if family and (form := name_form(family)):
            families.append(form)
        if given and (form := name_form(given)):
            givens.append(form)
    p.family, p.given = tuple(dict.fromkeys(families)), tuple(dict.fromkeys(givens))


def _split_text(text: str) -> tuple[str, str]:
    """Family and given names of a name written whole: 王晓明, or Latin "Given Family"."""
    text = text.strip()
    if has_hanzi(text):
        text = text.replace(" ", "")
        cut = 2 if text[:2] in _COMPOUND_SURNAMES else 1
        return text[:cut], text[cut:]
    parts = text.split()
    return (parts[-1], " ".join(parts[:-1])) if len(parts) > 1 else (text, "")


def _read_identifiers(p: Person, identifiers: list[dict]) -> None:
    for identifier in identifiers:
        value = identifier.get("value")
        if not value:
            continue
        codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding", [])}
        if identifier.get("system") == idnumber.RESIDENT_ID_SYSTEM:
            number = idnumber.normalize(value)
            valid = idnumber.is_valid(number)
            if p.national_id is None or (valid and not p.national_id_valid):
                p.national_id, p.national_id_valid = number, valid
        elif codes & _NATIONAL_TYPES and p.national_id is None:
            p.national_id, p.national_id_valid = value.strip().upper(), True


def _phone(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if len(digits) >= 6 else ""


def _letters(text: str) -> str | None:
    text = _DIGITS.sub(" ", text)
    out = " ".join(latin_key(w) if not has_hanzi(w) else w for w in text.split())
    return " ".join(out.split()) or None


def _read_address(p: Person, address: dict) -> None:
    lines = [line for line in address.get("line") or [] if line]
    numbers = [n for line in lines for n in _DIGITS.findall(line)]
    p.house = " ".join(numbers) or None
    if lines:
        p.street = _letters(lines[0])
        p.locality = _letters(" ".join(lines[1:])) if len(lines) > 1 else None
    city = " ".join(x for x in (address.get("district"), address.get("city")) if x)
    p.city = _letters(city) if city else None
    postcode = _NON_DIGIT.sub("", address.get("postalCode") or "")
    p.postcode = postcode or None
    state = address.get("state")
    p.state = _letters(state) if state else None
