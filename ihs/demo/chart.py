"""A resident's chart while their history is written: the entries of their Bundle so far.

The chart turns the events of ihs.demo.history (a visit, a diagnosis, a measurement, a
prescription) into resources with urn references to one another, and keeps what later
events need: the chronic conditions on the problem list and the drugs prescribed.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ihs.demo.body import Body
from ihs.demo.bundle import entry, new_urn, ref
from ihs.demo.conditions import DISEASES
from ihs.demo.encounters import encounter
from ihs.demo.medications import DRUGS, medication_request
from ihs.demo.region import Region, Site, Staff
from ihs.demo.residents import Registry, Resident
from ihs.demo.timeline import Visit


@dataclass
class Prescription:
    resource: dict
    drug: str
    authored: datetime
    days: int
    long_term: bool


@dataclass
class Problem:
    """A chronic condition on the problem list: when it began and a reference to it."""

    onset: date
    reference: dict


class Chart:
    def __init__(self, rng: random.Random, region: Region, registry: Registry, resident: Resident,
                 body: Body, anchor: date):
        self.rng = rng
        self.region = region
        self.registry = registry
        self.resident = resident
        self.body = body
        self.anchor = anchor
        self.patient = resident.reference()
        self.entries: list[dict] = [entry(resident.urn, resident.patient)]
        self.problems: dict[str, Problem] = {}
        self.regimens: dict[str, list[str]] = {}  # chronic condition -> the drugs the resident takes for it
        self.prescriptions: list[Prescription] = []

    def add(self, resource: dict, urn: str | None = None) -> str:
        """Add a resource to the Bundle; return its urn."""
        urn = urn or new_urn(self.rng)
        self.entries.append(entry(urn, resource))
        return urn

    def add_all(self, resources: list[dict]) -> None:
        for resource in resources:
            self.add(resource)

    def visit(self, site: Site, department: str | None, start: datetime, minutes: int,
              practitioner: Staff | None = None) -> Visit:
        """A visit at an institution (the resident gets a record number there) with its staff."""
        self.resident.register_at(site, self.registry)
        doctor = practitioner or self.rng.choice(site.members("doctor", department))
        nurse = self.rng.choice(site.members("nurse", department))
        return Visit(new_urn(self.rng), start, start + timedelta(minutes=minutes), site, department, doctor, nurse)

    def record(self, visit: Visit, klass: str, kind: str, diagnoses: list[dict], **details) -> None:
        """Write the Encounter of a visit."""
        self.add(encounter(visit, klass, kind, self.patient, diagnoses, **details), visit.urn)

    def problem(self, key: str, onset: date, resource: dict) -> dict:
        """Put a chronic condition on the problem list; return a reference to it."""
        reference = ref(self.add(resource), DISEASES[key].chinese)
        self.problems[key] = Problem(onset, reference)
        return reference

    def problems_on(self, day: date) -> list[dict]:
        return [p.reference for p in self.problems.values() if p.onset <= day]

    def current_drugs(self, day: date) -> dict[str, list[dict]]:
        """The long-term drugs taken on a day, each with the conditions it treats."""
        drugs: dict[str, list[dict]] = {}
        for key, problem in self.problems.items():
            if problem.onset <= day:
                for drug in self.regimens.get(key, []):
                    drugs.setdefault(drug, []).append(problem.reference)
        return drugs

    def prescribe(self, visit: Visit, drug: str, reasons: list[dict], *, days: int, long_term: bool,
                  category: str = "outpatient", authored: datetime | None = None) -> None:
        day = visit.start.date()
        child_weight = self.body.weight(day) if self.resident.age(day) < 12 else None
        resource = medication_request(DRUGS[drug], self.patient, visit, reasons, status="active", days=days,
                                      long_term=long_term, category=category, authored=authored,
                                      child_weight=child_weight)
        self.add(resource)
        self.prescriptions.append(Prescription(resource, drug, authored or visit.end, days, long_term))

    def settle_prescriptions(self) -> None:
        """Set each MedicationRequest's status as of the anchor date.

        The latest prescription of a long-term drug is active (the resident still takes it)
        and the ones it renewed are completed; a short course is active until it runs out.
        """
        latest: dict[str, Prescription] = {}
        for prescription in self.prescriptions:
            if prescription.long_term:
                latest[prescription.drug] = max(latest.get(prescription.drug, prescription), prescription,
                                                key=lambda p: p.authored)
        for prescription in self.prescriptions:
            if prescription.long_term:
                active = latest[prescription.drug] is prescription
            else:
                active = prescription.authored.date() + timedelta(days=prescription.days) > self.anchor
            prescription.resource["status"] = "active" if active else "completed"
