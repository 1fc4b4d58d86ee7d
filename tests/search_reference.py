"""A brute-force search evaluator: the reference the SQL engine is checked against.

It shares nothing with the SQL path but the SearchParameter definitions and a FHIRPath engine:
each parameter's expression is evaluated on each resource with fhirpathpy, and the matching
rules of https://hl7.org/fhir/R4/search.html are applied to the FHIR values in Python, resource
by resource. It is slow on purpose-built simplicity and meant for a few thousand resources.
It also follows the conventions the engine documents where the specification leaves a choice
(docs/storage.md, "Search: the SQL of each shape").
"""
from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta
import unicodedata
from decimal import Decimal
from functools import cache

from ihs.fhir.definitions import valuesets
from ihs.fhir.fhirpath_compile import compile_fhirpath
from ihs.fhir.searchparams import registry

INF = math.inf
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
UCUM = "http://unitsofmeasure.org"
# UCUM unit -> (canonical unit, factor, offset); written out here again on purpose
UNITS = {
    "g": ("g", 1, 0), "kg": ("g", 1000, 0), "mg": ("g", 0.001, 0), "ug": ("g", 1e-6, 0),
    "m": ("m", 1, 0), "cm": ("m", 0.01, 0), "mm": ("m", 0.001, 0), "[in_i]": ("m", 0.0254, 0),
    "Cel": ("K", 1, 273.15), "K": ("K", 1, 0), "[degF]": ("K", 5 / 9, 273.15 - 32 * 5 / 9),
    "mm[Hg]": ("Pa", 133.322, 0), "kPa": ("Pa", 1000, 0), "Pa": ("Pa", 1, 0),
    "/min": ("/s", 1 / 60, 0), "{beats}/min": ("/s", 1 / 60, 0), "/s": ("/s", 1, 0),
    "%": ("%", 1, 0), "kg/m2": ("kg/m2", 1, 0), "mmol/L": ("mmol/L", 1, 0), "mg/dL": ("g/L", 0.01, 0),
    "g/dL": ("g/L", 10, 0), "g/L": ("g/L", 1, 0), "L": ("L", 1, 0), "mL": ("L", 0.001, 0),
    "umol/L": ("mmol/L", 0.001, 0), "U/L": ("U/L", 1, 0), "10*9/L": ("10*9/L", 1, 0), "10*3/uL": ("10*9/L", 1, 0),
    "s": ("s", 1, 0), "min": ("s", 60, 0), "h": ("s", 3600, 0), "d": ("s", 86400, 0), "wk": ("s", 604800, 0),
}


def fold(text: str) -> str:
    """Lower case without accents; CJK ideographs are left alone (NFKD does not change them)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn").lower()


def _split(text: str, sep: str) -> list[str]:
    parts, cur, i = [], "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            cur += text[i:i + 2]
            i += 2
            continue
        if text[i] == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += text[i]
        i += 1
    return parts + [cur]


def _unescape(text: str) -> str:
    out, i = "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out += text[i]
        i += 1
    return out


def _prefixed(text: str) -> tuple[str, str]:
    return (text[:2], text[2:]) if text[:2] in PREFIXES else ("eq", text)


def _number(text: str) -> tuple[float, float, float]:
    d = Decimal(text)
    half = Decimal(5).scaleb(d.as_tuple().exponent - 1)
    return float(d), float(d - half), float(d + half)


def _canonical(value: float, system, code):
    if system != UCUM or code not in UNITS:
        return None
    unit, factor, offset = UNITS[code]
    return float(f"{value * factor + offset:.12g}"), unit


_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
                   r"(Z|[+-]\d{2}:\d{2})?)?)?)?")


def _date(text: str) -> tuple[float, float] | None:
    """[low, high) in microseconds (UTC) that a date/dateTime/instant covers, by its precision."""
    m = _DATE.fullmatch(text)
    if not m:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        if month is None:
            start, end = datetime(int(year), 1, 1), datetime(int(year) + 1, 1, 1)
        elif day is None:
            start = datetime(int(year), int(month), 1)
            end = (start + timedelta(days=32)).replace(day=1)
        elif hour is None:
            start = datetime(int(year), int(month), int(day))
            end = start + timedelta(days=1)
        else:
            micro = int((fraction or "").ljust(6, "0")[:6])
            start = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro)
            step = (timedelta(minutes=1) if second is None else timedelta(seconds=1) if not fraction
                    else timedelta(microseconds=10 ** max(0, 6 - len(fraction))))
            end = start + step
            if zone and zone != "Z":
                offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
                start, end = (start - offset, end - offset) if zone[0] == "+" else (start + offset, end + offset)
    except (ValueError, OverflowError):
        return None
    epoch = datetime(1970, 1, 1)
    return (start - epoch) / timedelta(microseconds=1), (end - epoch) / timedelta(microseconds=1)


# ---------------------------------------------------------------------------- facts per value type

def _strings(value, kind) -> list[str]:
    if isinstance(value, str):
        return [value]
    if kind == "HumanName":
        fields = ("family", "given", "prefix", "suffix", "text")
    elif kind == "Address":
        fields = ("line", "city", "district", "state", "postalCode", "country", "text")
    else:
        return []
    out = []
    for f in fields:
        v = value.get(f)
        out += [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)]
    return out


def _tokens(value, kind) -> list[tuple]:
    """(system, code, text, kind) facts; kind 'of-type' rows carry (type system, type code|value)."""
    if isinstance(value, bool):
        return [(None, "true" if value else "false", None, "")]
    if isinstance(value, str):
        return [(None, value, None, "")]
    if kind == "Coding":
        if value.get("code") is None and value.get("display") is None:
            return []
        return [(value.get("system"), value.get("code"), value.get("display"), "")]
    if kind == "CodeableConcept":
        out = [t for c in value.get("coding", []) for t in _tokens(c, "Coding")]
        return out + ([(None, None, value["text"], "")] if "text" in value else [])
    if kind == "Identifier":
        if value.get("system") is None and value.get("value") is None:
            return []
        out = [(value.get("system"), value.get("value"), (value.get("type") or {}).get("text"), "")]
        for c in (value.get("type") or {}).get("coding", []):
            if value.get("value") is not None and c.get("code") is not None:
                out.append((c.get("system"), f"{c['code']}|{value['value']}", None, "of-type"))
        return out
    if kind == "ContactPoint":
        return [(value.get("system"), value.get("value"), None, "")] if value.get("value") is not None else []
    return []


def _dates(value, kind) -> list[tuple[float, float]]:
    if isinstance(value, str):
        found = _date(value)
        return [found] if found else []
    if kind == "Period":
        start = _date(value["start"]) if "start" in value else None
        end = _date(value["end"]) if "end" in value else None
        if not start and not end:
            return []
        return [(start[0] if start else -INF, end[1] if end else INF)]
    if kind == "Timing":
        out = [d for e in value.get("event", []) for d in _dates(e, "dateTime")]
        bounds = (value.get("repeat") or {}).get("boundsPeriod")
        return out + (_dates(bounds, "Period") if bounds else [])
    return []


def _quantities(value, kind) -> list[tuple]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(float(value), None, None)]
    if not isinstance(value, dict):
        return []
    if kind == "Range":
        return [q for part in ("low", "high") if part in value for q in _quantities(value[part], "Quantity")]
    if kind == "Money":
        return [(float(value["value"]), "urn:iso:std:iso:4217", value.get("currency"))] if "value" in value else []
    if "value" not in value:
        return []
    return [(float(value["value"]), value.get("system"), value.get("code") or value.get("unit"))]


def _references(value, kind) -> list[tuple]:
    """(type, id, url) facts; (None, None, url) for canonicals and references outside Type/id."""
    if isinstance(value, str):
        url, _, version = value.partition("|")
        return [(None, None, url)] + ([(None, None, value)] if version else [])
    if kind == "Reference" and isinstance(value.get("reference"), str):
        written = value["reference"]
        parts = written.split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2 and parts[-2][:1].isupper() and "#" not in written and not written.startswith("urn:"):
            return [(parts[-2], parts[-1], written)]
        return [(None, None, written)]
    return []


class ReferenceSearch:
    """Evaluates searches over a fixed list of resources, one resource at a time."""

    def __init__(self, resources: list[dict]):
        self.resources = resources
        self.by_key = {(r["resourceType"], r["id"]): r for r in resources}
        self.registry = registry()
        self._facts: dict = {}
        self._has: dict = {}

    # -- values of a parameter on a resource -------------------------------------------------

    def values(self, resource: dict, param) -> list[tuple]:
        key = (resource["resourceType"], resource["id"], param.code)
        if key not in self._facts:
            self._facts[key] = _evaluate(param.expression, resource["resourceType"])(resource, resource)
        return self._facts[key]

    # -- the query ---------------------------------------------------------------------------

    def search(self, res_type: str, query: list[tuple[str, str]]) -> set[str]:
        """Ids of `res_type` resources matching every (name, value) of `query`."""
        return {r["id"] for r in self.resources if r["resourceType"] == res_type
                and all(self.matches(r, name, value) for name, value in query)}

    def matches(self, resource: dict, name: str, value: str) -> bool:
        res_type = resource["resourceType"]
        if name.startswith("_has:"):
            return (res_type, resource["id"]) in self._referred_by(name, value)
        if name in ("_list", "_text", "_content", "_filter") or (name == "near" and res_type == "Location"):
            return self._special(resource, name, value)
        head, dot, rest = name.partition(".")
        code, _, modifier = head.partition(":")
        param = self.registry.get(res_type, code)
        if dot:
            targets = [(v, k) for v, k in self.values(resource, param)]
            for v, k in targets:
                for ref_type, ref_id, _ in _references(v, k):
                    target = self.by_key.get((ref_type, ref_id))
                    if target and (not modifier or ref_type == modifier) and self._has_param(target, rest) \
                            and self.matches(target, rest, value):
                        return True
            return False
        if modifier == "missing":
            present = self._present(resource, param)
            return present != (value == "true")
        alternatives = _split(value, ",")
        if modifier in ("not", "not-in"):
            positive = "in" if modifier == "not-in" else None
            return not any(self._match_one(resource, param, positive, a) for a in alternatives)
        return any(self._match_one(resource, param, modifier, a) for a in alternatives)

    def _referred_by(self, name: str, value: str) -> set[tuple[str, str]]:
        """(type, id) of what the `source` resources matching `_has:source:param:rest=value` refer to."""
        key = (name, value)
        if key not in self._has:
            _, source, code, rest = name.split(":", 3)
            param = self.registry.get(source, code)
            self._has[key] = {(f[0], f[1]) for r in self.resources if r["resourceType"] == source
                              and self.matches(r, rest, value)
                              for v, k in self.values(r, param) for f in _references(v, k)}
        return self._has[key]

    def _special(self, resource: dict, name: str, value: str) -> bool:
        return special_matches(self, resource, name, value)

    def _hierarchy(self, param, wanted: str, modifier: str) -> set[tuple[str, str]]:
        return hierarchy_ids(self, param, wanted, modifier)

    def _has_param(self, resource: dict, name: str) -> bool:
        code = name.split(":", 1)[0].split(".", 1)[0]
        return name.startswith("_has:") or self.registry.get(resource["resourceType"], code) is not None

    def _present(self, resource: dict, param) -> bool:
        if param.code in ("_id", "_lastUpdated"):
            return True
        return bool(self._facts_of(resource, param, None))

    def _facts_of(self, resource: dict, param, modifier):
        values = self.values(resource, param)
        kind = param.type
        if kind == "string":
            return [s for v, k in values for s in _strings(v, k)]
        if kind == "token" or modifier == "identifier":
            if modifier == "identifier":
                return [(v["identifier"].get("system"), v["identifier"].get("value"), None, "")
                        for v, k in values if k == "Reference" and isinstance(v.get("identifier"), dict)
                        and v["identifier"].get("value") is not None]
            if param.code == "_id":
                return [(None, resource["id"], None, "")]
            return [t for v, k in values for t in _tokens(v, k)]
        if kind == "date":
            return [d for v, k in values for d in _dates(v, k)]
        if kind in ("number", "quantity"):
            return [q for v, k in values for q in _quantities(v, k)]
        if kind == "uri":
            return [v for v, k in values if isinstance(v, str)]
        if kind == "reference":
            return [f for v, k in values for f in _references(v, k)]
        if kind == "composite":
            return self._composite_facts(resource, param)
        return []

    def _match_one(self, resource: dict, param, modifier, text: str) -> bool:
        kind = param.type
        if param.code == "_id":
            return resource["id"] == _unescape(text)
        if param.code == "_lastUpdated":
            low = _date(resource["meta"]["lastUpdated"])[0]
            prefix, rest = _prefixed(text)
            return _compare_range(prefix, (low, low + 1), _date(rest))
        facts = self._facts_of(resource, param, modifier)
        if modifier == "identifier":
            return any(_token_is(f, _unescape_token(text)) for f in facts)
        if kind == "string":
            if modifier == "exact":
                return _unescape(text) in facts
            wanted = fold(_unescape(text))
            if modifier == "contains":
                return any(wanted in fold(s) for s in facts)
            return any(fold(s).startswith(wanted) for s in facts)
        if kind == "token":
            return self._token(facts, modifier, text)
        if kind == "date":
            prefix, rest = _prefixed(text)
            wanted = _date(rest.replace(" ", "+"))
            return any(_compare_range(prefix, d, wanted) for d in facts)
        if kind == "number":
            prefix, rest = _prefixed(text)
            return any(_compare_number(prefix, q[0], _number(rest)) for q in facts)
        if kind == "quantity":
            return any(_quantity_is(q, text) for q in facts)
        if kind == "uri":
            wanted = _unescape(text)
            if modifier == "below":
                return any(u.startswith(wanted) for u in facts)
            if modifier == "above":
                return any(wanted.startswith(u) and (len(u) == len(wanted) or u.endswith("/")
                                                     or wanted[len(u)] == "/") for u in facts)
            return wanted in facts
        if kind == "reference":
            if modifier in ("above", "below"):
                return any((f[0], f[1]) in self._hierarchy(param, _unescape(text), modifier) for f in facts)
            return any(_reference_is(f, _unescape(text), modifier) for f in facts)
        if kind == "composite":
            return self._composite(param, facts, text)
        raise ValueError(kind)

    @staticmethod
    def _token(facts, modifier, text) -> bool:
        plain = [f for f in facts if f[3] == ""]
        if modifier == "text":
            wanted = fold(_unescape(text))
            return any(f[2] is not None and (fold(f[2]).startswith(wanted) or " " + wanted in fold(f[2]))
                       for f in plain)
        if modifier == "of-type":
            system, code, value = [_unescape(p) for p in _split(text, "|")]
            return any(f[3] == "of-type" and f[0] == system and f[1] == f"{code}|{value}" for f in facts)
        if modifier == "in":
            grouped = _expansion(_unescape(text))
            return any(f[1] in grouped.get(f[0], ()) or (f[0] is None and any(f[1] in c for c in grouped.values()))
                       for f in plain)
        return any(_token_is(f, _unescape_token(text)) for f in plain)

    # -- composites --------------------------------------------------------------------------

    def _composite_facts(self, resource: dict, param) -> list[tuple[list, list]]:
        """(first component facts, second component facts) per focus the composite's expression selects."""
        components = [self.registry.by_url(url) for url, _ in param.components]
        out = []
        for focus, focus_type in _evaluate(param.expression, resource["resourceType"])(resource, resource):
            pair = []
            for (url, expression), component in zip(param.components, components):
                values = _evaluate(expression, focus_type)(focus, resource)
                pair.append((component.type, values))
            (_, a_values), (b_type, b_values) = pair
            has_code = any(t[1] is not None for v, k in a_values for t in _tokens(v, k) if t[3] == "")
            if has_code and any(_component_facts(b_type, v, k) for v, k in b_values):
                out.append(pair)
        return out

    def _composite(self, param, facts, text: str) -> bool:
        first_text, second_text = _split(text, "$")
        wanted = _unescape_token(first_text)
        for (_, a_values), (b_type, b_values) in facts:
            if not any(_token_is(t, wanted) for v, k in a_values for t in _tokens(v, k) if t[3] == ""):
                continue
            if b_type == "quantity" and any(_quantity_is(q, second_text) for v, k in b_values
                                            for q in _quantities(v, k)):
                return True
            if b_type == "token" and any(_token_is(t, _unescape_token(second_text)) for v, k in b_values
                                         for t in _tokens(v, k) if t[3] == ""):
                return True
            if b_type == "date":
                prefix, rest = _prefixed(second_text)
                if any(_compare_range(prefix, d, _date(rest)) for v, k in b_values for d in _dates(v, k)):
                    return True
            if b_type == "string" and any(fold(s).startswith(fold(_unescape(second_text)))
                                          for v, k in b_values for s in _strings(v, k)):
                return True
        return False


def _component_facts(kind: str, value, value_type) -> list:
    """The facts a composite's second component holds, by the component parameter's type."""
    if kind == "quantity":
        return _quantities(value, value_type)
    if kind == "token":
        return [t for t in _tokens(value, value_type) if t[3] == "" and t[1] is not None]
    if kind == "date":
        return _dates(value, value_type)
    if kind == "string":
        return _strings(value, value_type)
    return []


# ---------------------------------------------------------------------------- comparisons

@cache
def _evaluate(expression: str, context: str):
    return compile_fhirpath(expression, context)


@cache
def _expansion(url: str) -> dict[str, frozenset]:
    grouped: dict[str, set] = {}
    for entry in valuesets()[url]:
        grouped.setdefault(entry[0], set()).add(entry[1])
    return {k: frozenset(v) for k, v in grouped.items()}


def _unescape_token(text: str) -> tuple:
    parts = _split(text, "|")
    if len(parts) == 1:
        return None, _unescape(parts[0])
    return _unescape(parts[0]), _unescape(parts[1]) or None


def _token_is(fact, wanted) -> bool:
    system, code = wanted
    if system is not None and (fact[0] is not None if system == "" else fact[0] != system):
        return False
    return code is None or fact[1] == code


def _compare_range(prefix: str, value: tuple[float, float], wanted: tuple[float, float]) -> bool:
    (lo, hi), (ps, pe) = value, wanted
    contained = lo >= ps and hi <= pe
    return {
        "eq": contained, "ne": not contained,
        "gt": hi > pe, "lt": lo < ps,
        "ge": hi > pe or contained, "le": lo < ps or contained,
        "sa": lo >= pe, "eb": hi <= ps,
    }.get(prefix, None) if prefix != "ap" else _approximately(value, wanted)


def _approximately(value: tuple[float, float], wanted: tuple[float, float]) -> bool:
    """Overlap with the searched range widened by a tenth of its distance from now."""
    now = time.time() * 1e6
    (lo, hi), (ps, pe) = value, wanted
    return lo < pe + 0.1 * abs(pe - now) and hi > ps - 0.1 * abs(now - ps)


def _compare_number(prefix: str, value: float, wanted: tuple[float, float, float]) -> bool:
    exact, low, high = wanted
    return {
        "eq": low <= value < high, "ne": not low <= value < high,
        "gt": value > exact, "lt": value < exact, "ge": value >= exact, "le": value <= exact,
        "sa": value > exact, "eb": value < exact,
        "ap": exact - abs(exact) * 0.1 <= value <= exact + abs(exact) * 0.1,
    }[prefix]


def _quantity_is(fact, text: str) -> bool:
    value, system, code = fact
    parts = [_unescape(p) for p in _split(text, "|")]
    prefix, number = _prefixed(parts[0])
    wanted = _number(number)
    if len(parts) == 1:
        return _compare_number(prefix, value, wanted)
    w_system, w_code = parts[1] or None, parts[2] or None
    canonical = _canonical(wanted[0], w_system, w_code)
    if canonical:
        mine = _canonical(value, system, code)
        low = _canonical(wanted[1], w_system, w_code)[0]
        high = _canonical(wanted[2], w_system, w_code)[0]
        return bool(mine) and mine[1] == canonical[1] and _compare_number(prefix, mine[0], (canonical[0], low, high))
    return ((w_system is None or system == w_system) and (w_code is None or code == w_code)
            and _compare_number(prefix, value, wanted))


def _reference_is(fact, wanted: str, modifier) -> bool:
    ref_type, ref_id, url = fact
    if "://" in wanted or wanted.startswith("urn:"):
        return url == wanted
    if "/" in wanted:
        w_type, w_id = wanted.split("/")[:2]
        return ref_type == w_type and ref_id == w_id and (not modifier or modifier == w_type)
    return ref_id == wanted and (not modifier or ref_type == modifier)


# ---------------------------------------------------------------------------- parameters of their own

EARTH_KM = 6371.0088
NEAR_UNITS_KM = {"km": 1.0, "m": 0.001, "[mi_i]": 1.609344, "[nmi_i]": 1.852}
_WORD = re.compile(r"[^\W_]+")


def _haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = [(math.radians(x), math.radians(y)) for x, y in (a, b)]
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def _all_strings(value, out: list[str], top: bool = True) -> list[str]:
    """The string values _content searches beside the narrative (the engine's documented convention): all
    but the narrative element, URIs and base64 data (256 characters or more without a space)."""
    if isinstance(value, str):
        if not value.startswith(("http://", "https://", "urn:", "ftp://", "file://")) \
                and (len(value) < 256 or " " in value):
            out.append(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if not (top and key == "text"):
                _all_strings(inner, out, False)
    elif isinstance(value, list):
        for inner in value:
            _all_strings(inner, out, False)
    return out


def _words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def _narrative_words(resource: dict) -> list[str]:
    div = (resource.get("text") or {}).get("div") or ""
    return _words(re.sub(r"<[^>]*>", " ", div).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def _has_phrase(words: list[str], phrase: list[str]) -> bool:
    return any(words[i:i + len(phrase)] == phrase for i in range(len(words) - len(phrase) + 1))


def special_matches(self, resource: dict, name: str, value: str) -> bool:
    """_list, _text, _content, near and _filter, each by its own definition, resource by resource."""
    if name == "_list":
        held = set()
        for list_id in _split(value, ","):
            found = self.by_key.get(("List", _unescape(list_id).removeprefix("List/")))
            for entry in (found or {}).get("entry", ()):
                ref = (entry.get("item") or {}).get("reference", "")
                held.add(tuple(ref.split("/")[:2]))
        return (resource["resourceType"], resource["id"]) in held
    if name in ("_text", "_content"):
        documents = [_narrative_words(resource)]
        if name == "_content":
            documents.append(_words(" ".join(_all_strings(resource, []))))
        # the engine's syntax, in the forms the property test writes: words (all required) or a quoted phrase
        for alternative in _split(value, ","):
            text = _unescape(alternative)
            if text.startswith('"'):
                if any(_has_phrase(words, _words(text.strip('"'))) for words in documents):
                    return True
            elif all(any(w in words for words in documents) for w in _words(text)):
                return True
        return False
    if name == "near":
        position = resource.get("position") or {}
        if "latitude" not in position or "longitude" not in position:
            return False
        for point in _split(value, ","):
            parts = [_unescape(p) for p in _split(point, "|")] + ["", ""]
            km = float(parts[2]) * NEAR_UNITS_KM[parts[3] or "km"] if parts[2] else 5.0
            here = (position["latitude"], position["longitude"])
            if _haversine_km((float(parts[0]), float(parts[1])), here) <= km:
                return True
        return False
    return _filter(self, resource, value)


def _filter(self, resource: dict, expression: str) -> bool:
    """The `_filter` forms the property test writes: `a op v`, `x and y`, `x or y`, `not (x)`; each comparison
    is the ordinary criterion its operator stands for (date and number prefixes, string sw as the default
    prefix match, token and reference eq as the plain value)."""
    if expression.startswith("not (") and expression.endswith(")"):
        return not _filter(self, resource, expression[5:-1])
    for joiner in (" or ", " and "):
        if joiner in expression:
            left, right = expression.split(joiner, 1)
            a, b = _filter(self, resource, left), _filter(self, resource, right)
            return (a or b) if joiner == " or " else (a and b)
    path, op, written = expression.split(" ", 2)
    text = _json_string(written) if written.startswith('"') else written
    escaped = text.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$")
    if op in ("eq", "sw"):
        return self.matches(resource, path, escaped)
    return self.matches(resource, path, op + escaped)


def _json_string(text: str) -> str:
    import json

    return json.loads(text)


def hierarchy_ids(self, param, wanted: str, modifier: str) -> set[tuple[str, str]]:
    """(type, id) of `wanted` and every resource below (above) it, by the one reference its type has to itself."""
    target_type, target_id = wanted.split("/") if "/" in wanted else (param.targets[0], wanted)
    own = sorted(p.code for p in self.registry.params_for(target_type).values()
                 if p.type == "reference" and p.expression and p.targets == (target_type,))
    link = own[0] if len(own) == 1 else next(c for c in ("partof", "part-of", "parent") if c in own)
    link_param = self.registry.get(target_type, link)
    parent_of = {}
    for r in self.resources:
        if r["resourceType"] == target_type:
            parent_of[r["id"]] = {f[1] for v, k in self.values(r, link_param) for f in _references(v, k)
                                  if f[0] == target_type}
    found, frontier = {target_id}, {target_id}
    while frontier:
        if modifier == "below":
            step = {child for child, parents in parent_of.items() if parents & frontier}
        else:
            step = {p for node in frontier for p in parent_of.get(node, ())}
        frontier = step - found
        found |= step
    return {(target_type, i) for i in found}

