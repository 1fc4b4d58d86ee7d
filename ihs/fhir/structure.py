"""The R4 element model compiled once into plain dicts and tuples, for the validator's hot loop.

`model(type_key)` gives a `Model`: its `elements` map every JSON property name the type allows
(choice variants such as valueQuantity and primitive extensions such as _birthDate included) to an
element tuple; `required` lists what must be present. Element tuples are laid out as

    (kind, many, type_name, check, codes, binding_url, targets, choice)

kind       PRIMITIVE, COMPLEX, REFERENCE, CODED, RESOURCE, PRIMITIVE_EXT (the `_x` object) or RESOURCE_TYPE
many       True when the element repeats (max "*"): its JSON value is an array
type_name  the FHIR type ("date", "HumanName", "Patient.contact", "Resource")
check      PRIMITIVE: a predicate on the JSON value; COMPLEX/REFERENCE/CODED/PRIMITIVE_EXT: the child Model
codes      the required binding's codes (frozenset of code, or of (system, code) for CODED), else None
binding_url, targets (frozenset of allowed Reference target types or None), choice (the [x] base or None)
"""
from __future__ import annotations

import calendar
import math
import re
from functools import cache

from ihs.fhir import definitions

PRIMITIVE, COMPLEX, REFERENCE, CODED, RESOURCE, PRIMITIVE_EXT, RESOURCE_TYPE = range(7)

# what each primitive looks like, for diagnostics that say how to fix a value
HINTS = {
    "boolean": "a JSON boolean (true or false)",
    "integer": "a JSON integer from -2147483648 to 2147483647",
    "positiveInt": "a JSON integer from 1 to 2147483647",
    "unsignedInt": "a JSON integer from 0 to 2147483647",
    "decimal": "a JSON number",
    "date": "a date YYYY, YYYY-MM or YYYY-MM-DD",
    "dateTime": "a dateTime YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff]+zz:zz "
                "(a time needs a time zone)",
    "instant": "an instant YYYY-MM-DDThh:mm:ss[.fff]Z or with a +zz:zz offset",
    "time": "a time hh:mm:ss[.fff]",
    "id": "an id of 1-64 characters A-Z a-z 0-9 - .",
    "code": "a code: a non-empty string without leading, trailing or double whitespace",
    "oid": "an OID urn:oid:1.2.3",
    "uuid": "a UUID urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (lower case)",
    "uri": "a URI without whitespace",
    "url": "a URL without whitespace",
    "canonical": "a canonical URL without whitespace",
    "base64Binary": "base64 data (A-Z a-z 0-9 + / =, length a multiple of 4)",
    "string": "a non-empty JSON string",
    "markdown": "a non-empty JSON string",
    "xhtml": 'an XHTML element <div xmlns="http://www.w3.org/1999/xhtml">...</div> as a string',
}


class Model:
    """One resource type, datatype or backbone element: the JSON properties it allows and those it requires."""

    __slots__ = ("name", "elements", "required")

    def __init__(self, name: str):
        self.name = name
        self.elements: dict[str, tuple] = {}
        self.required: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __repr__(self) -> str:
        return f"Model({self.name})"


def _string_check(pattern: str | None):
    # re.ASCII: the spec's regexes are Java's, where \s and \S mean ASCII whitespace only
    match = re.compile(pattern, re.ASCII).fullmatch if pattern else None
    if match is None:
        return lambda v: type(v) is str and v != ""
    return lambda v: type(v) is str and v != "" and match(v) is not None


def _calendar_check(pattern: str):
    match = re.compile(pattern, re.ASCII).fullmatch

    def check(v) -> bool:
        if type(v) is not str or match(v) is None:
            return False
        # the regex allows 31 days in every month; only days past the 28th need the calendar
        return len(v) < 10 or v[8:10] <= "28" or int(v[8:10]) <= calendar.monthrange(int(v[:4]), int(v[5:7]))[1]

    return check


_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*", re.ASCII).fullmatch
_WHITESPACE = re.compile(r"\s+", re.ASCII)


def _base64(v) -> bool:
    # the R4 regex (groups of four, whitespace between them) checked without its backtracking cost on large data
    return type(v) is str and v != "" and _BASE64(v) is not None and len(_WHITESPACE.sub("", v)) % 4 == 0


_DIV = re.compile(r"\s*<div\s[^>]*\bxmlns\s*=\s*([\"'])http://www\.w3\.org/1999/xhtml\1[^>]*>").match


def _xhtml(v) -> bool:
    # the JSON form of Narrative.div: one XHTML <div> in the XHTML namespace (its content rules are invariants)
    if type(v) is not str:
        return False
    opening = _DIV(v)
    if opening is None:
        return False
    end = v.rstrip()
    return end.endswith("</div>") or (opening.end() >= len(end) and end.endswith("/>"))


def _integer(low: int):
    return lambda v: type(v) is int and low <= v <= 2147483647


def _decimal(v) -> bool:
    return type(v) is int or (type(v) is float and math.isfinite(v))


def _boolean(v) -> bool:
    return type(v) is bool


def primitive_checks(primitives: dict) -> dict:
    """type name -> predicate telling whether a JSON value is a valid value of that primitive type."""
    checks = {name: _string_check(p["regex"]) for name, p in primitives.items()}
    for name in ("date", "dateTime", "instant"):
        checks[name] = _calendar_check(primitives[name]["regex"])
    checks.update(boolean=_boolean, decimal=_decimal, integer=_integer(-2147483648), unsignedInt=_integer(0),
                  positiveInt=_integer(1), base64Binary=_base64, xhtml=_xhtml)
    return checks


def _codes(url: str | None, coded: bool):
    if url is None or url in definitions.open_valuesets():
        return None
    rows = definitions.valuesets().get(url)
    if rows is None:
        return None
    return frozenset((r[0], r[1]) for r in rows) if coded else frozenset(r[1] for r in rows)


@cache
def models() -> dict[str, Model]:
    """Every type key ("Patient", "HumanName", "Patient.contact", ...) compiled to its Model."""
    data = definitions.structures()
    checks = primitive_checks(data["primitives"])
    compiled = {key: Model(key) for key in data["types"]}
    element_model = Model("Element")  # what a primitive's `_x` object may hold
    compiled["Element"] = element_model
    resources = set(data["resources"])
    for key, spec in data["types"].items():
        model = compiled[key]
        required = []
        for name, e in spec.items():
            type_name, many = e["type"], e.get("max", "1") != "1"
            url, targets, choice = e.get("binding"), e.get("targets"), e.get("choice")
            targets = frozenset(targets) if targets else None
            if type_name in checks:
                element = (PRIMITIVE, many, type_name, checks[type_name], _codes(url, False), url, None, choice)
                model.elements["_" + name] = (PRIMITIVE_EXT, many, type_name, element_model, None, None, None, choice)
                keys = (name, "_" + name)
            elif type_name == "Resource":
                element = (RESOURCE, many, type_name, None, None, None, None, choice)
                keys = (name,)
            else:
                kind = COMPLEX
                if type_name == "Reference":
                    kind = REFERENCE
                codes = _codes(url, True) if type_name in ("Coding", "CodeableConcept") else None
                if codes is not None:
                    kind = CODED
                element = (kind, many, type_name, compiled[type_name], codes, url, targets, choice)
                keys = (name,)
            model.elements[name] = element
            if e.get("min", 0) > 0:
                required.append((choice + "[x]" if choice else name, keys))
        if key in resources:
            model.elements["resourceType"] = (RESOURCE_TYPE, False, "code", None, None, None, None, None)
        model.required = _merge_choices(required)
    extension = compiled["Extension"].elements
    element_model.elements = {"id": extension["id"], "extension": extension["extension"]}
    return compiled


def _merge_choices(required: list) -> tuple:
    """A required choice element is satisfied by any of its variants: group their keys under one label."""
    merged: dict[str, tuple] = {}
    for label, keys in required:
        merged[label] = merged.get(label, ()) + keys
    return tuple(merged.items())


@cache
def resource_types() -> frozenset[str]:
    """The 146 R4 resource types."""
    return frozenset(definitions.structures()["resources"])
