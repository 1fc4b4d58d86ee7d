"""Resident ID numbers (GB 11643-1999 citizen identity numbers) as matching evidence.

An ID number is 17 digits and an ISO 7064 MOD 11-2 check character (0-9 or X). A number whose
check character is wrong was mistyped somewhere, so it is still compared (one edit away from a
valid number is strong evidence) but never trusted as an exact key on its own.
"""
from __future__ import annotations

import re

# ISO 7064 MOD 11-2 weights: 2**(17 - i) mod 11 for the 17 body digits
_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_SHAPE = re.compile(r"\d{17}[\dX]")

RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"


def normalize(number: str) -> str:
    """The number without spaces or dashes, with an upper-case X."""
    return re.sub(r"[\s-]", "", number).upper()


def check_character(body: str) -> str:
    """The MOD 11-2 check character of the first 17 digits."""
    remainder = (12 - sum(int(d) * w for d, w in zip(body, _WEIGHTS)) % 11) % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid(number: str) -> bool:
    """True when `number` has the GB 11643 shape and its check character is right."""
    number = normalize(number)
    return bool(_SHAPE.fullmatch(number)) and check_character(number[:17]) == number[17]


def birth_date(number: str) -> str | None:
    """The birth date an ID number states, as YYYYMMDD, or None if it has no such shape."""
    number = normalize(number)
    return number[6:14] if _SHAPE.fullmatch(number) else None
