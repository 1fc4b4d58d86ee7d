"""The search-index rows extracted from one resource: the contract between indexing and the store.

Each list holds tuples whose first item is the SearchParameter code (e.g. "birthdate").
The store writes each list into the table of the same name (`idx_string`, `idx_token`, ...),
see docs/storage.md. Times are integer microseconds since 1970-01-01T00:00:00Z.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IndexRows:
    # (param, value normalized: lower case, accents removed; value as written)
    string: list[tuple[str, str, str]] = field(default_factory=list)
    # (param, system or None, code or None, display/text normalized or None)
    token: list[tuple[str, str | None, str | None, str | None]] = field(default_factory=list)
    # (param, target type or None, target id or None, the reference/canonical/url as written)
    reference: list[tuple[str, str | None, str | None, str]] = field(default_factory=list)
    # (param, low inclusive, high exclusive) in microseconds since the epoch, UTC
    date: list[tuple[str, int, int]] = field(default_factory=list)
    # (param, value)
    number: list[tuple[str, float]] = field(default_factory=list)
    # (param, value, system or None, code or unit or None, canonical value or None, canonical UCUM code or None)
    quantity: list[tuple[str, float, str | None, str | None, float | None, str | None]] = field(default_factory=list)
    # (param, uri)
    uri: list[tuple[str, str]] = field(default_factory=list)
    # (param, a_system, a_code, b_system, b_code, b_low, b_high, b_string): first component a token,
    # second a token (b_system/b_code), a number/quantity (b_low = b_high = value, b_system/b_code the unit),
    # a date (b_low/b_high in microseconds) or a string (b_string normalized)
    composite: list[tuple[str, str | None, str | None, str | None, str | None, float | None, float | None, str | None]] = field(default_factory=list)

    # resources inside this one (Resource.contained): (type, id, their own rows)
    contained: list[tuple[str, str, "IndexRows"]] = field(default_factory=list)
    # (narrative words, content words) for _text and _content (ihs/fhir/fulltext.py); None: not extracted
    text: tuple[str, str] | None = None
    # Location.position for `near`: (latitude, longitude, x, y, z), x/y/z on the unit sphere (WGS84 degrees)
    position: list[tuple[float, float, float, float, float]] = field(default_factory=list)

    TABLES = ("string", "token", "reference", "date", "number", "quantity", "uri", "composite")

    def tables(self):
        for name in self.TABLES:
            rows = getattr(self, name)
            if rows:
                yield name, rows
