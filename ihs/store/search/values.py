"""Search values as the R4 search page writes them, parsed into plain values per parameter type.

https://hl7.org/fhir/R4/search.html: `,` separates alternatives (OR), `\\` escapes `,` `$` `|` and
itself, number/date/quantity values may start with a prefix (eq ne gt lt ge le sa eb ap), and a
number's precision is implied by how it is written ("100" is [99.5, 100.5)).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ihs.fhir.fhirpath_compile import parse_reference as type_and_id
from ihs.fhir.indexing import canonical_quantity, date_bounds, normalize

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


class BadValue(ValueError):
    """A value that does not parse for its parameter type; the message says what was expected."""


def split_unescaped(text: str, separator: str) -> list[str]:
    """`text` split on `separator` where it is not escaped by a backslash (escapes are kept)."""
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _prefix(text: str) -> tuple[str, str]:
    if len(text) > 2 and text[:2] in PREFIXES and not text[:2].isdigit():
        return text[:2], text[2:]
    return "eq", text


@dataclass(frozen=True)
class Number:
    """A number with its prefix; [low, high) is the range its written precision covers."""

    prefix: str
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class DateRange:
    """A date/dateTime/instant with its prefix, as the [low, high) microseconds it covers."""

    prefix: str
    low: int
    high: int


@dataclass(frozen=True)
class Token:
    """system|code; `system` is None when not given, "" for `|code` (no system)."""

    system: str | None
    code: str | None


@dataclass(frozen=True)
class Quantity:
    number: Number
    system: str | None
    code: str | None

    def canonical(self) -> tuple[Number, str] | None:
        """The value in its UCUM canonical unit (mg -> g) when the unit is one the index converts."""
        found = canonical_quantity(self.number.value, self.system, self.code)
        if not found:
            return None
        low = canonical_quantity(self.number.low, self.system, self.code)[0]
        high = canonical_quantity(self.number.high, self.system, self.code)[0]
        return Number(self.number.prefix, found[0], low, high), found[1]


@dataclass(frozen=True)
class Reference:
    """A reference value: Type/id (type may be None for a bare id), or a url kept as written."""

    type: str | None
    id: str | None
    url: str | None


def parse_number(text: str, prefix_allowed: bool = True) -> Number:
    prefix, rest = _prefix(text) if prefix_allowed else ("eq", text)
    try:
        exact = Decimal(rest)
    except InvalidOperation:
        raise BadValue(f"'{text}' is not a number (e.g. 100, 5.4, ge2.5e3)") from None
    if not exact.is_finite():
        raise BadValue(f"'{text}' is not a finite number")
    half = Decimal(5).scaleb(exact.as_tuple().exponent - 1)
    return Number(prefix, float(exact), float(exact - half), float(exact + half))


def parse_date(text: str) -> DateRange:
    prefix, rest = _prefix(text)
    # a '+' time zone offset arrives as a space when the client did not percent-encode it
    rest = rest.replace(" ", "+")
    bounds = date_bounds(rest)
    if bounds is None:
        raise BadValue(f"'{text}' is not a date (e.g. 2020, 2020-03, 2020-03-15, ge2020-03-15T10:00:00Z)")
    return DateRange(prefix, *bounds)


def approximate(low: float, high: float, now: float) -> tuple[float, float]:
    """The range `ap` accepts: the value's range widened by 10% of its distance from now."""
    return low - 0.1 * abs(now - low), high + 0.1 * abs(high - now)


def now_micros() -> int:
    return time.time_ns() // 1000


def parse_token(text: str) -> Token:
    parts = split_unescaped(text, "|")
    if len(parts) == 1:
        return Token(None, unescape(parts[0]))
    if len(parts) == 2:
        system, code = unescape(parts[0]), unescape(parts[1])
        return Token(system, code or None)
    raise BadValue(f"'{text}' is not a token: write code, system|code, |code or system|")


def parse_of_type(text: str) -> tuple[Token, str]:
    """`:of-type` values are identifier-type-system|identifier-type-code|identifier-value."""
    parts = [unescape(p) for p in split_unescaped(text, "|")]
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise BadValue(f"'{text}' is not a typed identifier: write type-system|type-code|value")
    return Token(parts[0], parts[1]), parts[2]


def parse_quantity(text: str) -> Quantity:
    parts = split_unescaped(text, "|")
    if len(parts) not in (1, 3):
        raise BadValue(f"'{text}' is not a quantity: write number, number|system|code or number||code")
    number = parse_number(parts[0])
    if len(parts) == 1:
        return Quantity(number, None, None)
    system, code = unescape(parts[1]) or None, unescape(parts[2]) or None
    return Quantity(number, system, code)


def parse_reference(text: str, base: str | None = None) -> Reference:
    value = unescape(text)
    if not value:
        raise BadValue("an empty reference matches nothing; use :missing=true to find resources without one")
    if base and value.startswith(base.rstrip("/") + "/"):
        value = value[len(base.rstrip("/")) + 1:]
    if "://" in value or value.startswith("urn:"):
        return Reference(None, None, value)
    ref_type, ref_id = parse_reference_path(value)
    if ref_type:
        return Reference(ref_type, ref_id, None)
    if "/" in value:
        raise BadValue(f"'{text}' is not a reference: write Type/id, id or an absolute url")
    return Reference(None, value, None)


def parse_reference_path(value: str) -> tuple[str | None, str | None]:
    """(Type, id) of a relative reference "Type/id" or "Type/id/_history/v"; (None, None) otherwise."""
    if value.count("/") not in (1, 3):
        return None, None
    return type_and_id(value)


def normalized(text: str) -> str:
    """A string value as the index stores it (lower case, accents removed)."""
    return normalize(unescape(text))
