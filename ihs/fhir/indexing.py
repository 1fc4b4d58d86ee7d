"""Search-index rows extracted from a resource by extractors compiled from the SearchParameters.

`extract(resource)` evaluates every indexed parameter of the resource's type (compiled once per
type and cached on the registry) and converts each value by the parameter's type into the
IndexRows layout (ihs/fhir/index_rows.py). Conventions the layout leaves open:

- strings are normalized by `normalize`: lower case, accents removed, CJK kept as written;
- an Identifier also gives a token row under "<code>:of-type" with system = its type coding's
  system and code = "<type code>|<identifier value>" (the :of-type modifier);
- a Reference given by identifier gives a token row under "<code>:identifier";
- a canonical reference "url|version" gives reference rows (None, None, url) and
  (None, None, "url|version"); contained ("#x") and "urn:uuid:" references are kept as written;
- a Period without start or end is open: low = FAR_PAST, high = FAR_FUTURE;
- a Range gives two rows (low and high) for number and quantity parameters;
- quantities carry their UCUM canonical form (`canonical_quantity`); a composite's quantity
  component gives a second row in canonical units when they differ, marked b_string = CANONICAL_ROW;
- composites with more than two components (MolecularSequence coordinates) are not indexed:
  the composite table holds a pair.
"""
from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import orjson

from ihs.fhir import fulltext
from ihs.fhir.fhirpath_compile import (PRIMITIVES, RESOURCE_TYPES, compile_fast, compile_fhirpath,
                                       parse_reference)
from ihs.fhir.index_rows import IndexRows
from ihs.fhir.searchparams import Registry, SearchParam, registry as default_registry

log = logging.getLogger(__name__)

Converter = Callable[[str, list, IndexRows], None]

# ---------------------------------------------------------------------------- strings

# Hangul, CJK radicals/symbols, kana, ideographs, halfwidth kana: NFKD would split their marks
_CJK_RANGES = ((0x1100, 0x11FF), (0x2E80, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xF900, 0xFAFF),
               (0xFE30, 0xFE4F), (0xFF61, 0xFFDC), (0x20000, 0x3FFFF))


@lru_cache(maxsize=8192)
def _fold(ch: str) -> str:
    code = ord(ch)
    if any(low <= code <= high for low, high in _CJK_RANGES):
        return ch
    return "".join(c for c in unicodedata.normalize("NFKD", ch) if unicodedata.category(c) != "Mn").lower()


# Text longer than this is indexed by its beginning: searches match on the first 200 characters.
INDEXED_TEXT_MAX = 200


def normalize(text: str) -> str:
    """Text as string search compares it: lower case, accents removed (NFKD), CJK characters kept."""
    if len(text) > INDEXED_TEXT_MAX:
        text = text[:INDEXED_TEXT_MAX]
    return fold(text)


def fold(text: str) -> str:
    """`text` in lower case with accents removed (NFKD), CJK characters kept, whatever its length."""
    if text.isascii():
        return text.lower()
    return "".join(ch if ch < "\x80" else _fold(ch) for ch in text).lower()


# ---------------------------------------------------------------------------- dates

_SECOND = 1_000_000
_DAY = 86_400 * _SECOND
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
                   r"(Z|[+-]\d{2}:\d{2})?)?)?)?")


def _days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (any year, no datetime limits)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year - 719468


FAR_PAST = _days(1, 1, 1) * _DAY  # 0001-01-01T00:00:00Z, the low of a Period without start
FAR_FUTURE = _days(10000, 1, 1) * _DAY  # just after 9999-12-31, the high of a Period without end
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def date_bounds(value: str) -> tuple[int, int] | None:
    """[low, high) in microseconds since the epoch (UTC) covered by a date, dateTime or instant.

    A partial value covers its whole precision ("2020" is the year 2020, "2020-03-01T10:00:00Z"
    one second); a time without zone is read as UTC. None when `value` is not a FHIR date.
    """
    match = _DATE.fullmatch(value)
    if not match:
        return None
    y, mo, d, hh, mi, ss, fraction, zone = match.groups()
    year = int(y)
    if year < 1:
        return None
    if mo is None:
        return _days(year, 1, 1) * _DAY, _days(year + 1, 1, 1) * _DAY
    month = int(mo)
    if not 1 <= month <= 12:
        return None
    if d is None:
        return _days(year, month, 1) * _DAY, _days(year + month // 12, month % 12 + 1, 1) * _DAY
    day = int(d)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _MONTH_DAYS[month - 1] or month == 2 and day == 29 and not leap:
        return None
    start = _days(year, month, day) * _DAY
    if hh is None:
        return start, start + _DAY
    hour, minute, second = int(hh), int(mi), int(ss or 0)
    if hour > 23 or minute > 59 or second > 60:
        return None
    start += (hour * 3600 + minute * 60 + second) * _SECOND
    if fraction:
        start += int((fraction + "00000")[:6])
        step = 10 ** (6 - len(fraction)) if len(fraction) < 6 else 1
    else:
        step = _SECOND if ss else 60 * _SECOND
    if zone and zone != "Z":
        offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * _SECOND
        start += -offset if zone[0] == "+" else offset
    return start, start + step


def _period_bounds(period: dict) -> tuple[int, int] | None:
    start, end = period.get("start"), period.get("end")
    low = date_bounds(start) if isinstance(start, str) else None
    high = date_bounds(end) if isinstance(end, str) else None
    if low is None and high is None:
        return None
    return (low[0] if low else FAR_PAST), (high[1] if high else FAR_FUTURE)


# ---------------------------------------------------------------------------- quantities

UCUM = "http://unitsofmeasure.org"
# b_string of the extra composite row that restates a quantity component in canonical units
CANONICAL_ROW = "canonical"
# UCUM code -> (canonical code, factor, offset): canonical value = value * factor + offset
_UCUM_CANONICAL = {
    "g": ("g", 1.0, 0.0), "kg": ("g", 1e3, 0.0), "mg": ("g", 1e-3, 0.0), "ug": ("g", 1e-6, 0.0),
    "ng": ("g", 1e-9, 0.0), "pg": ("g", 1e-12, 0.0),
    "[lb_av]": ("g", 453.59237, 0.0), "[oz_av]": ("g", 28.349523125, 0.0),
    "m": ("m", 1.0, 0.0), "km": ("m", 1e3, 0.0), "cm": ("m", 1e-2, 0.0), "mm": ("m", 1e-3, 0.0),
    "um": ("m", 1e-6, 0.0), "[in_i]": ("m", 0.0254, 0.0), "[ft_i]": ("m", 0.3048, 0.0),
    "K": ("K", 1.0, 0.0), "Cel": ("K", 1.0, 273.15), "[degF]": ("K", 5 / 9, 273.15 - 32 * 5 / 9),
    "Pa": ("Pa", 1.0, 0.0), "kPa": ("Pa", 1e3, 0.0), "mm[Hg]": ("Pa", 133.322, 0.0),
    "cm[H2O]": ("Pa", 98.0665, 0.0),
    "s": ("s", 1.0, 0.0), "ms": ("s", 1e-3, 0.0), "min": ("s", 60.0, 0.0), "h": ("s", 3600.0, 0.0),
    "d": ("s", 86400.0, 0.0), "wk": ("s", 604800.0, 0.0), "mo": ("s", 2629800.0, 0.0),
    "a": ("s", 31557600.0, 0.0),
    "/s": ("/s", 1.0, 0.0), "/min": ("/s", 1 / 60, 0.0), "/h": ("/s", 1 / 3600, 0.0),
    "{beats}/min": ("/s", 1 / 60, 0.0),
    "L": ("L", 1.0, 0.0), "dL": ("L", 0.1, 0.0), "mL": ("L", 1e-3, 0.0), "uL": ("L", 1e-6, 0.0),
    "fL": ("L", 1e-15, 0.0),
    "g/L": ("g/L", 1.0, 0.0), "g/dL": ("g/L", 10.0, 0.0), "mg/dL": ("g/L", 1e-2, 0.0),
    "mg/L": ("g/L", 1e-3, 0.0), "mg/mL": ("g/L", 1.0, 0.0), "ug/mL": ("g/L", 1e-3, 0.0),
    "ug/dL": ("g/L", 1e-5, 0.0), "ug/L": ("g/L", 1e-6, 0.0), "ng/mL": ("g/L", 1e-6, 0.0),
    "pg/mL": ("g/L", 1e-9, 0.0),
    # substance concentrations stay molar: converting to mass needs the molar mass
    "mmol/L": ("mmol/L", 1.0, 0.0), "mol/L": ("mmol/L", 1e3, 0.0), "umol/L": ("mmol/L", 1e-3, 0.0),
    "nmol/L": ("mmol/L", 1e-6, 0.0),
    "%": ("%", 1.0, 0.0), "kg/m2": ("kg/m2", 1.0, 0.0), "g/m2": ("kg/m2", 1e-3, 0.0),
    "U/L": ("U/L", 1.0, 0.0), "kU/L": ("U/L", 1e3, 0.0),
    "10*3/uL": ("10*9/L", 1.0, 0.0), "10*9/L": ("10*9/L", 1.0, 0.0),
    "10*6/uL": ("10*12/L", 1.0, 0.0), "10*12/L": ("10*12/L", 1.0, 0.0),
}


def canonical_quantity(value: float, system: str | None, code: str | None) -> tuple[float, str] | None:
    """The value in the canonical unit of its dimension (mg -> g, mm[Hg] -> Pa, Cel -> K), for UCUM codes
    in a small table of common vital-sign and laboratory units; None for anything else."""
    if system != UCUM or code not in _UCUM_CANONICAL:
        return None
    canonical, factor, offset = _UCUM_CANONICAL[code]
    # 12 significant digits: 181.2 cm is 1.812 m, not 1.8119999999999998
    return float(f"{value * factor + offset:.12g}"), canonical


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _quantity_row(code: str, quantity: dict, system: str | None = None, unit: str | None = None):
    value = _number(quantity.get("value"))
    if value is None:
        return None
    system = system or quantity.get("system")
    unit = unit or quantity.get("code") or quantity.get("unit")
    canonical = canonical_quantity(value, system, quantity.get("code"))
    if canonical:
        return code, value, system, unit, canonical[0], canonical[1]
    return code, value, system, unit, None, None


# ---------------------------------------------------------------------------- converters by type

def _string_primitive(code, values, rows):
    for value in values:
        if isinstance(value, str):
            rows.string.append((code, normalize(value), value[:INDEXED_TEXT_MAX]))


def _string_parts(fields: tuple[str, ...]) -> Converter:
    def convert(code, values, rows):
        for value in values:
            for field in fields:
                part = value.get(field)
                for text in (part if isinstance(part, list) else (part,)):
                    if isinstance(text, str):
                        rows.string.append((code, normalize(text), text[:INDEXED_TEXT_MAX]))
    return convert


def _optional_text(text: Any) -> str | None:
    return normalize(text) if isinstance(text, str) else None


def _token_coding(code, values, rows):
    for coding in values:
        if coding.get("code") is not None or coding.get("display") is not None:
            rows.token.append((code, coding.get("system"), coding.get("code"), _optional_text(coding.get("display"))))


def _token_concept(code, values, rows):
    for concept in values:
        _token_coding(code, concept.get("coding", ()), rows)
        if isinstance(concept.get("text"), str):
            rows.token.append((code, None, None, normalize(concept["text"])))


def _token_identifier(code, values, rows):
    for identifier in values:
        system, value = identifier.get("system"), identifier.get("value")
        if system is None and value is None:
            continue
        kind = identifier.get("type") or {}
        rows.token.append((code, system, value, _optional_text(kind.get("text"))))
        if value is not None:
            for coding in kind.get("coding", ()):
                if coding.get("code") is not None:
                    rows.token.append((code + ":of-type", coding.get("system"), f"{coding['code']}|{value}", None))


def _token_contact(code, values, rows):
    for contact in values:
        if contact.get("value") is not None:
            rows.token.append((code, contact.get("system"), contact["value"], None))


def _token_primitive(code, values, rows):
    for value in values:
        if isinstance(value, bool):
            rows.token.append((code, None, "true" if value else "false", None))
        elif isinstance(value, str):
            rows.token.append((code, None, value, None))


def _token_reference(code, values, rows):
    for reference in values:
        written = reference.get("reference")
        if isinstance(written, str):
            rows.token.append((code, None, parse_reference(written)[1] or written, None))


def _reference(code, values, rows):
    for reference in values:
        written = reference.get("reference")
        if isinstance(written, str):
            target_type, target_id = parse_reference(written)
            rows.reference.append((code, target_type, target_id, written))
        identifier = reference.get("identifier")
        if isinstance(identifier, dict) and identifier.get("value") is not None:
            rows.token.append((code + ":identifier", identifier.get("system"), identifier["value"], None))


def _reference_canonical(code, values, rows):
    for value in values:
        if isinstance(value, str):
            url, _, version = value.partition("|")
            rows.reference.append((code, None, None, url))
            if version:
                rows.reference.append((code, None, None, value))


def _reference_resource(code, values, rows):
    for resource in values:
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            rows.reference.append((code, resource["resourceType"], resource["id"],
                                   f"{resource['resourceType']}/{resource['id']}"))


def _date_primitive(code, values, rows):
    for value in values:
        bounds = date_bounds(value) if isinstance(value, str) else None
        if bounds:
            rows.date.append((code, *bounds))


def _date_period(code, values, rows):
    for period in values:
        bounds = _period_bounds(period)
        if bounds:
            rows.date.append((code, *bounds))


def _date_timing(code, values, rows):
    for timing in values:
        _date_primitive(code, timing.get("event", ()), rows)
        bounds = (timing.get("repeat") or {}).get("boundsPeriod")
        if bounds:
            _date_period(code, [bounds], rows)


def _number_primitive(code, values, rows):
    for value in values:
        number = _number(value)
        if number is not None:
            rows.number.append((code, number))


def _number_quantity(code, values, rows):
    _number_primitive(code, [q.get("value") for q in values], rows)


def _number_range(code, values, rows):
    _number_quantity(code, [q for r in values for q in (r.get("low"), r.get("high")) if q], rows)


def _quantity(code, values, rows):
    for quantity in values:
        row = _quantity_row(code, quantity)
        if row:
            rows.quantity.append(row)


def _quantity_money(code, values, rows):
    for money in values:
        row = _quantity_row(code, money, "urn:iso:std:iso:4217", money.get("currency"))
        if row:
            rows.quantity.append(row)


def _quantity_range(code, values, rows):
    _quantity(code, [q for r in values for q in (r.get("low"), r.get("high")) if isinstance(q, dict)], rows)


def _uri(code, values, rows):
    for value in values:
        if isinstance(value, str):
            rows.uri.append((code, value))


_QUANTITIES = ("Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "MoneyQuantity")
_CONVERTERS: dict[str, dict[str, Converter]] = {
    "string": {"HumanName": _string_parts(("family", "given", "prefix", "suffix", "text")),
               "Address": _string_parts(("line", "city", "district", "state", "postalCode", "country", "text"))},
    "token": {"Coding": _token_coding, "CodeableConcept": _token_concept, "Identifier": _token_identifier,
              "ContactPoint": _token_contact, "Reference": _token_reference},
    "reference": {"Reference": _reference, "canonical": _reference_canonical, "uri": _reference_canonical,
                  "url": _reference_canonical, "Resource": _reference_resource},
    "date": {"date": _date_primitive, "dateTime": _date_primitive, "instant": _date_primitive,
             "Period": _date_period, "Timing": _date_timing},
    "number": {"decimal": _number_primitive, "integer": _number_primitive, "positiveInt": _number_primitive,
               "unsignedInt": _number_primitive, "Range": _number_range,
               **{name: _number_quantity for name in _QUANTITIES}},
    "quantity": {"Money": _quantity_money, "Range": _quantity_range, **{name: _quantity for name in _QUANTITIES}},
    "uri": {},
}


def converter(param_type: str, value_type: str) -> Converter | None:
    """How values of FHIR type `value_type` become index rows of a `param_type` parameter; None: not indexed."""
    found = _CONVERTERS.get(param_type, {}).get(value_type)
    if found:
        return found
    if value_type in RESOURCE_TYPES and param_type == "reference":
        return _reference_resource
    if value_type in PRIMITIVES and value_type not in ("xhtml", "base64Binary"):
        if param_type == "string":
            return _string_primitive
        if param_type == "token":
            return _token_primitive
        if param_type == "uri":
            return _uri
    return None


# ---------------------------------------------------------------------------- composites

def _component_pairs(param_type: str, scratch: IndexRows) -> list[tuple]:
    """The (system, code, low, high, string) of a composite's second component, from converted rows."""
    if param_type == "token":
        return [(s, c, None, None, None) for p, s, c, _ in scratch.token if c is not None and ":" not in p]
    if param_type == "number":
        return [(None, None, v, v, None) for _, v in scratch.number]
    if param_type == "quantity":
        pairs = []
        for _, value, system, unit, canonical, canonical_unit in scratch.quantity:
            pairs.append((system, unit, value, value, None))
            if canonical_unit and (canonical_unit != unit or canonical != value):
                pairs.append((UCUM, canonical_unit, canonical, canonical, CANONICAL_ROW))
        return pairs
    if param_type == "date":
        return [(None, None, low, high, None) for _, low, high in scratch.date]
    if param_type == "string":
        return [(None, None, None, None, normalized) for _, normalized, _ in scratch.string]
    if param_type == "reference":
        return [(None, written, None, None, None) for _, _, _, written in scratch.reference]
    if param_type == "uri":
        return [(None, uri, None, None, None) for _, uri in scratch.uri]
    return []


# ---------------------------------------------------------------------------- compiled extractors

Unit = Callable[[dict, IndexRows], None]


@dataclass
class ParamExtractor:
    """The compiled extraction of one parameter: units of work, each run only when the resource has
    its root JSON key (None: always run); `fast` when no value goes through fhirpathpy."""

    param: SearchParam
    fast: bool
    units: list[tuple[str | None, Unit]]


@dataclass
class _Plan:
    extractors: list[ParamExtractor]
    always: list[tuple[ParamExtractor, Unit]]
    by_key: dict[str, list[tuple[ParamExtractor, Unit]]]


Route = tuple[str | None, Callable, Converter]  # (root JSON key or None, getter, converter)


def _value_routes(expression: str, context: str, param_type: str) -> tuple[list[Route], bool]:
    """One route per fast branch, or one dynamic route through fhirpathpy; and whether it is fast."""
    branches = compile_fast(expression, context)
    if branches is not None:
        routes = [(b.key, b.get, converter(param_type, b.type)) for b in branches]
        return [route for route in routes if route[2]], True
    evaluate = compile_fhirpath(expression, context)

    def convert(code, typed_values, rows):
        for value, value_type in typed_values:
            found = converter(param_type, value_type)
            if found:
                found(code, [value], rows)
    return [(None, evaluate, convert)], False


def _unit(code: str, get: Callable, convert: Converter) -> Unit:
    def run(resource, rows):
        values = get(resource, resource)
        if values:
            convert(code, values, rows)
    return run


def _simple(param: SearchParam, resource_type: str) -> ParamExtractor:
    routes, fast = _value_routes(param.expression, resource_type, param.type)
    return ParamExtractor(param, fast, [(key, _unit(param.code, get, convert)) for key, get, convert in routes])


def _convert_all(routes, code: str, focus: Any, resource: dict) -> IndexRows:
    scratch = IndexRows()
    for _, get, convert in routes:
        values = get(focus, resource)
        if values:
            convert(code, values, scratch)
    return scratch


def _composite_unit(code: str, foci: Callable[[dict], list], b_type: str) -> Unit:
    """Pairs of component values per focus; `foci(resource)` gives (focus, first routes, second routes)."""
    def run(resource, rows):
        for focus, a_routes, b_routes in foci(resource):
            # the second component (a value[x]) is the one most often absent: evaluate it first
            seconds = _component_pairs(b_type, _convert_all(b_routes, code, focus, resource))
            if not seconds:
                continue
            firsts = [(system, value) for param, system, value, _ in _convert_all(a_routes, code, focus, resource).token
                      if value is not None and param == code]
            rows.composite.extend((code, system, value, *second) for system, value in firsts for second in seconds)
    return run


def _composite(param: SearchParam, resource_type: str, registry: Registry) -> ParamExtractor | None:
    if len(param.components) != 2:
        return None
    definitions = [registry.by_url(url) for url, _ in param.components]
    if None in definitions:
        return None
    (_, a_expression), (_, b_expression) = param.components
    b_type = definitions[1].type
    compiled: dict[str, tuple[list, list, bool]] = {}

    def routes_for(context: str) -> tuple[list, list, bool]:
        """The component routes relative to a focus of type `context`, compiled on first use."""
        if context not in compiled:
            a_routes, a_fast = _value_routes(a_expression, context, "token")
            b_routes, b_fast = _value_routes(b_expression, context, b_type)
            compiled[context] = (a_routes, b_routes, a_fast and b_fast)
        return compiled[context]

    branches = compile_fast(param.expression, resource_type)
    if branches is None:
        evaluate = compile_fhirpath(param.expression, resource_type)

        def typed_foci(resource):
            return [(focus, *routes_for(focus_type)[:2]) for focus, focus_type in evaluate(resource, resource)]
        return ParamExtractor(param, False, [(None, _composite_unit(param.code, typed_foci, b_type))])
    units, fast = [], True
    for branch in branches:
        a_routes, b_routes, branch_fast = routes_for(branch.type)
        fast = fast and branch_fast

        def foci(resource, get=branch.get, a_routes=a_routes, b_routes=b_routes):
            return [(focus, a_routes, b_routes) for focus in get(resource, resource)]
        units.append((branch.key, _composite_unit(param.code, foci, b_type)))
    return ParamExtractor(param, fast, units)


def extractors(resource_type: str, registry: Registry | None = None) -> list[ParamExtractor]:
    """The compiled extractors of every indexed parameter of `resource_type` (cached on the registry)."""
    return _plan(resource_type, registry or default_registry()).extractors


def _plan(resource_type: str, registry: Registry) -> _Plan:
    return registry.derived(("index", resource_type), lambda: _compile(resource_type, registry))


def _compile(resource_type: str, registry: Registry) -> _Plan:
    compiled = []
    for param in registry.params_for(resource_type).values():
        if not param.indexed:
            continue
        if param.type == "composite":
            found = _composite(param, resource_type, registry)
            if found:
                compiled.append(found)
        elif param.type in _CONVERTERS:
            compiled.append(_simple(param, resource_type))
    plan = _Plan(compiled, [], {})
    for extractor in compiled:
        for key, unit in extractor.units:
            (plan.always if key is None else plan.by_key.setdefault(key, [])).append((extractor, unit))
    return plan


def extract(resource: dict, registry: Registry | None = None) -> IndexRows:
    """The search-index rows of `resource` for every indexed parameter of its type (duplicates removed),
    with the rows of each resource it contains and its words for _text and _content."""
    registry = registry or default_registry()
    rows = _extract_values(resource, registry)
    for inner in resource.get("contained", ()) if "contained" in resource else ():
        if isinstance(inner, dict) and inner.get("resourceType") in RESOURCE_TYPES and isinstance(inner.get("id"), str):
            rows.contained.append((inner["resourceType"], inner["id"], _extract_values(inner, registry)))
    if registry.get(resource["resourceType"], "_content") is not None:  # not for every type (AuditEvent)
        rows.text = fulltext.words_of(resource)
    return rows


def position(resource: dict) -> tuple[float, float, float, float, float] | None:
    """A Location's position as (latitude, longitude, x, y, z), x/y/z its point on the unit sphere (for `near`)."""
    found = resource.get("position")
    if not isinstance(found, dict):
        return None
    latitude, longitude = _number(found.get("latitude")), _number(found.get("longitude"))
    if latitude is None or longitude is None or not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        return None
    phi, lam = math.radians(latitude), math.radians(longitude)
    return latitude, longitude, math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)


# AuditEvents repeat their agents, type, action and outcome from request to request: the rows of a
# unit reading one of those elements are worked out once per distinct value. Only for resources
# containing nothing a reference could resolve into, where a unit's rows depend on its element alone,
# and not for the elements that differ every time (when, what), which would only crowd the memo.
_MEMO_KEYS = {"AuditEvent": frozenset({"type", "subtype", "action", "outcome", "agent", "source", "purposeOfEvent"})}
_MEMO_SIZE = 4096
_memo: dict[tuple[int, bytes], tuple] = {}


def _memoized(unit: Unit, value: bytes, resource: dict, rows: IndexRows) -> None:
    """`unit`'s rows, remembered by the serialized element (`value`) they come from."""
    found = (id(unit), value)
    produced = _memo.get(found)
    if produced is None:
        scratch = IndexRows()
        unit(resource, scratch)
        produced = tuple((name, getattr(scratch, name)) for name in IndexRows.TABLES if getattr(scratch, name))
        if len(_memo) >= _MEMO_SIZE:
            _memo.clear()
        _memo[found] = produced
    for name, table in produced:
        getattr(rows, name).extend(table)


def _extract_values(resource: dict, registry: Registry) -> IndexRows:
    plan = _plan(resource["resourceType"], registry)
    units = [(None, extractor, unit) for extractor, unit in plan.always]
    for key in resource:
        units.extend((key, extractor, unit) for extractor, unit in plan.by_key.get(key, ()))
    # the serialized elements, once per element however many units read it
    remembered = _MEMO_KEYS.get(resource["resourceType"], ()) if "contained" not in resource else ()
    values = {}
    rows = IndexRows()
    for key, extractor, unit in units:
        try:
            if key in remembered:
                value = values.get(key)
                if value is None:
                    value = values[key] = orjson.dumps(resource[key])
                _memoized(unit, value, resource, rows)
            else:
                unit(resource, rows)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            # a value of an unexpected shape: index the rest rather than refuse the resource
            log.warning("cannot index %s.%s of %s: %s", resource["resourceType"], extractor.param.code,
                        resource.get("id"), exc)
        except Exception as exc:  # fhirpathpy raises bare Exceptions for what it cannot evaluate
            if extractor.fast:
                raise
            log.warning("fhirpathpy cannot evaluate %s on %s: %s", extractor.param.expression, resource.get("id"), exc)
    for name in IndexRows.TABLES:
        table = getattr(rows, name)
        if len(table) > 1:
            setattr(rows, name, list(dict.fromkeys(table)))
    if resource["resourceType"] == "Location":
        found = position(resource)
        if found:
            rows.position.append(found)
    return rows
