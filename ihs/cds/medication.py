"""Facts read off a MedicationRequest: its daily dose, how many days it supplies, when it may be dispensed."""
from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.parser import isoparse

# the region's clock: a prescription is valid on the calendar day it was written, local time
LOCAL = ZoneInfo(os.environ.get("IHS_TIMEZONE", "Asia/Shanghai"))

MASS_IN_MG = {"g": 1000.0, "mg": 1.0, "ug": 0.001, "mcg": 0.001, "μg": 0.001, "ng": 1e-6}
UNITS_PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30, "a": 1 / 365}
DAYS = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0, "mo": 30.0, "month": 30.0,
        "months": 30.0, "h": 1 / 24, "hour": 1 / 24, "hours": 1 / 24}
# HL7 timing abbreviations (http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation) as times a day
TIMING_CODES = {"QD": 1, "AM": 1, "PM": 1, "BED": 1, "BID": 2, "TID": 3, "QID": 4, "QOD": 0.5, "Q1H": 24, "Q2H": 12,
                "Q3H": 8, "Q4H": 6, "Q6H": 4, "Q8H": 3, "WK": 1 / 7, "MO": 1 / 30}
LONG_TERM = "continuous"  # courseOfTherapyType of a long-term prescription (长期处方)


def unit_of(quantity: dict) -> str | None:
    return quantity.get("code") or quantity.get("unit")


def convert(value: float, unit: str | None, target: str) -> float | None:
    """`value` in `unit` expressed in `target` (mass units convert; others must match), or None."""
    if unit == target:
        return value
    if unit in MASS_IN_MG and target in MASS_IN_MG:
        return value * MASS_IN_MG[unit] / MASS_IN_MG[target]
    return None


def _dose(dosage: dict) -> dict | None:
    for dose_and_rate in dosage.get("doseAndRate", []):
        quantity = dose_and_rate.get("doseQuantity") or (dose_and_rate.get("doseRange") or {}).get("high")
        if quantity and quantity.get("value") is not None:
            return quantity
    return None


def times_per_day(timing: dict | None) -> float | None:
    """How many times a day a Timing repeats, or None when it does not say."""
    if not timing:
        return None
    repeat = timing.get("repeat") or {}
    if repeat.get("frequency") is not None or repeat.get("period") is not None:
        frequency = repeat.get("frequencyMax") or repeat.get("frequency") or 1
        period = repeat.get("period") or 1
        per_unit = UNITS_PER_DAY.get(repeat.get("periodUnit", "d"))
        return frequency / period * per_unit if per_unit else None
    for coding in (timing.get("code") or {}).get("coding", []):
        if coding.get("code") in TIMING_CODES:
            return float(TIMING_CODES[coding["code"]])
    return None


def daily_dose(request: dict, unit: str) -> float | None:
    """The most a day of the prescription gives, in `unit`; None when the dosage does not tell."""
    total = 0.0
    dosages = request.get("dosageInstruction") or []
    for dosage in dosages:
        cap = dosage.get("maxDosePerPeriod")
        if cap and cap.get("numerator", {}).get("value") is not None:
            numerator, denominator = cap["numerator"], cap.get("denominator") or {"value": 1, "code": "d"}
            amount = convert(numerator["value"], unit_of(numerator), unit)
            per_unit = UNITS_PER_DAY.get(unit_of(denominator) or "d")
            if amount is None or not per_unit or not denominator.get("value"):
                return None
            total += amount * per_unit / denominator["value"]
            continue
        dose, frequency = _dose(dosage), times_per_day(dosage.get("timing"))
        if dose is None or frequency is None:
            return None
        amount = convert(dose["value"], unit_of(dose), unit)
        if amount is None:
            return None
        total += amount * frequency
    return total if dosages else None


def supply_days(request: dict) -> float | None:
    """Days of treatment the prescription supplies: the expected supply duration, else the dosage's bounds."""
    duration = (request.get("dispenseRequest") or {}).get("expectedSupplyDuration")
    if duration and duration.get("value") is not None:
        factor = DAYS.get(unit_of(duration) or "d")
        return duration["value"] * factor if factor else None
    bounds = [((d.get("timing") or {}).get("repeat") or {}).get("boundsDuration") for d in
              request.get("dosageInstruction") or []]
    lengths = [b["value"] * DAYS[unit_of(b)] for b in bounds if b and b.get("value") is not None and unit_of(b) in DAYS]
    return max(lengths) if lengths else None


def instant(value: str | None) -> datetime | None:
    """A FHIR date or dateTime as an aware datetime (a bare date is its local midnight)."""
    if not value:
        return None
    parsed = isoparse(value)
    if isinstance(parsed, datetime) and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LOCAL)
    return parsed


def validity(request: dict) -> tuple[datetime, datetime] | None:
    """When the prescription may be dispensed: its validity period, else the day it was written
    (the whole supply of a long-term prescription); None when it has no date."""
    period = (request.get("dispenseRequest") or {}).get("validityPeriod") or {}
    written = instant(request.get("authoredOn"))
    start = instant(period.get("start")) or written
    if start is None:
        return None
    if period.get("end"):
        end = instant(period["end"])
        if len(period["end"]) == 10:  # a date: valid through that day
            end += timedelta(days=1)
        return start, end
    day = start.astimezone(LOCAL).date()
    last = day
    if is_long_term(request):
        last = day + timedelta(days=max(0, int(supply_days(request) or 1) - 1))
    return start, datetime.combine(last + timedelta(days=1), time(), LOCAL)


def is_long_term(request: dict) -> bool:
    return any(c.get("code") == LONG_TERM for c in (request.get("courseOfTherapyType") or {}).get("coding", []))


def age_on(birth: str | None, day: date) -> float | None:
    """Age in years on `day`, from a FHIR birthDate (a partial date counts from its first day)."""
    if not birth:
        return None
    parts = [int(p) for p in birth[:10].split("-")] + [1, 1]
    born = date(parts[0], parts[1], parts[2])
    return (day - born).days / 365.25
