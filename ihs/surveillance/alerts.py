"""Aberration alerts for CDC users: a Flag on the place and a Communication that carries the series.

The Flag (subject: the district's jurisdiction Location) says what crossed which threshold on
which day; the Communication to the CDC organisation holds the same sentence and, as a JSON
attachment, the series the method looked at with its expected values and upper bounds. An
alert is identified by syndrome, place, day and method, so raising it again finds the first.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import orjson

from ihs.fhir.validation import validate
from ihs.store import search
from ihs.store.store import StoredResource, UnitOfWork
from ihs.surveillance.casereport import cdc_reference
from ihs.surveillance.syndromes import syndrome as syndrome_named

ALERT = "https://ihs.example.org/fhir/sid/surveillance-alert"
DISTRICT = "https://ihs.example.org/fhir/sid/district"
SYNDROME = "https://ihs.example.org/fhir/CodeSystem/syndrome"
SURVEILLANCE = "https://ihs.example.org/fhir/CodeSystem/surveillance"
WHOLE_REGION = "*"


@dataclass
class Signal:
    """One series whose latest point crossed its threshold."""

    syndrome: str
    district: str  # WHOLE_REGION for the region's total
    day: date
    method: str
    alpha: float
    observed: float
    upperbound: float
    expected: float
    periods: list[str] = field(default_factory=list)  # labels of the series' points
    series: list[float] = field(default_factory=list)
    expected_series: list[float | None] = field(default_factory=list)
    upper_series: list[float | None] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.syndrome}/{self.district}/{self.day.isoformat()}/{self.method}"

    def sentence(self) -> str:
        s = syndrome_named(self.syndrome)
        place = "全地区 whole region" if self.district == WHOLE_REGION else self.district
        return (f"{s.chinese} {s.name}: {place} {self.day.isoformat()} {self.observed:g} visits exceed the "
                f"threshold {self.upperbound:g} (expected {self.expected:.1f}; {self.method}, alpha {self.alpha:g})")


def raise_alert(uow: UnitOfWork, signal: Signal) -> tuple[StoredResource, StoredResource, bool]:
    """(Flag, Communication, created) for the signal; the existing pair when it was raised before."""
    flags = search.find(uow, "Flag", [("identifier", f"{ALERT}|{signal.key}")], limit=1)
    if flags:
        notes = search.find(uow, "Communication", [("identifier", f"{ALERT}|{signal.key}")], limit=1)
        return flags[0], notes[0] if notes else None, False
    place = _jurisdiction(uow, signal.district)
    s = syndrome_named(signal.syndrome)
    identifier = [{"system": ALERT, "value": signal.key}]
    flag = {
        "resourceType": "Flag",
        "identifier": identifier,
        "status": "active",
        "category": [{"coding": [{"system": SURVEILLANCE, "code": "aberration", "display": "Syndromic aberration"}],
                      "text": "公共卫生预警 public health alert"}],
        "code": {"coding": [{"system": SYNDROME, "code": s.code, "display": s.name}], "text": signal.sentence()},
        "subject": {"reference": f"Location/{place.id}"},
        "period": {"start": signal.day.isoformat()},
    }
    validate(flag)
    stored_flag = uow.create(flag)
    payload = {"syndrome": s.code, "district": signal.district, "day": signal.day.isoformat(),
               "method": signal.method, "alpha": signal.alpha, "observed": signal.observed,
               "threshold": signal.upperbound, "expected": signal.expected, "periods": signal.periods,
               "series": signal.series, "expectedSeries": signal.expected_series, "upperbounds": signal.upper_series}
    communication = {
        "resourceType": "Communication",
        "identifier": identifier,
        "status": "completed",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/communication-category",
                                  "code": "alert", "display": "Alert"}]}],
        "priority": "urgent",
        "about": [{"reference": f"Flag/{stored_flag.id}"}],
        "sent": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "recipient": [cdc_reference(uow)],
        "payload": [{"contentString": signal.sentence()},
                    {"contentAttachment": {"contentType": "application/json", "title": "series and threshold",
                                           "data": base64.b64encode(orjson.dumps(payload)).decode()}}],
    }
    validate(communication)
    return stored_flag, uow.create(communication), True


def series_of(communication: dict) -> dict:
    """The series and threshold an alert Communication carries."""
    for part in communication.get("payload") or []:
        attachment = part.get("contentAttachment")
        if attachment and attachment.get("contentType") == "application/json":
            return orjson.loads(base64.b64decode(attachment["data"]))
    return {}


def _jurisdiction(uow: UnitOfWork, district: str) -> StoredResource:
    found = search.find(uow, "Location", [("identifier", f"{DISTRICT}|{district}")], limit=1)
    if found:
        return found[0]
    name = "全地区 (whole region)" if district == WHOLE_REGION else district
    location = {
        "resourceType": "Location",
        "identifier": [{"system": DISTRICT, "value": district}],
        "status": "active",
        "name": name,
        "mode": "kind" if district == WHOLE_REGION else "instance",
        "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                                     "code": "jdn", "display": "Jurisdiction"}]},
    }
    if district != WHOLE_REGION:
        location["address"] = {"district": district}
    validate(location)
    return uow.create(location)
