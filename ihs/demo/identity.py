"""Resident ID numbers (GB 11643-1999 citizen identity numbers) and mobile numbers.

An ID number has 18 characters: the 6-digit administrative area code where it was first
issued, the birth date as YYYYMMDD, a 3-digit sequence whose last digit is odd for men
and even for women, and an ISO 7064 MOD 11-2 check character (0-9 or X).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

# ISO 7064 MOD 11-2 weights: 2**(17 - i) mod 11 for the 17 body digits
WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]

# prefixes of the three carriers' mobile number blocks
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                   "153", "155", "156", "157", "158", "159", "177", "180", "181", "182", "183", "185",
                   "186", "187", "188", "189", "199"]


def check_character(body: str) -> str:
    """The MOD 11-2 check character of the first 17 digits of an ID number."""
    if len(body) != 17 or not body.isdigit():
        raise ValueError(f"an ID number body is 17 digits, not {body!r}")
    remainder = (12 - sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11) % 11
    return "X" if remainder == 10 else str(remainder)


def resident_id(area_code: str, birth_date: date, sequence: int) -> str:
    """The ID number for an area, a birth date and a 3-digit sequence (odd last digit: male)."""
    if not 0 <= sequence <= 999:
        raise ValueError(f"the sequence is 3 digits, not {sequence}")
    body = f"{area_code}{birth_date:%Y%m%d}{sequence:03d}"
    return body + check_character(body)


def draw_sequence(rng: random.Random, gender: str) -> int:
    """A 3-digit sequence number whose last digit encodes the sex ("male" odd, "female" even)."""
    return rng.randrange(1 if gender == "male" else 0, 1000, 2)


@dataclass(frozen=True)
class ResidentId:
    area_code: str
    birth_date: date
    gender: str  # "male" | "female"


def decode_resident_id(number: str) -> ResidentId:
    """The area, birth date and sex an ID number states; ValueError if it is malformed."""
    if len(number) != 18:
        raise ValueError(f"an ID number has 18 characters, not {len(number)}")
    if check_character(number[:17]) != number[17].upper():
        raise ValueError(f"{number} has a wrong check character")
    birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    return ResidentId(number[:6], birth, "male" if int(number[16]) % 2 else "female")


def mobile_phone(rng: random.Random) -> str:
    """An 11-digit mainland mobile number (1[3-9]x xxxx xxxx)."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
