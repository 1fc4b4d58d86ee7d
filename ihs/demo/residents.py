"""Residents of the demo region as FHIR Patients: name, sex, birth, ID number, home, phone.

Ages follow the shape of China's 2020 census; a resident's ID number states the area it
was issued in (mostly the home district), the birth date and the sex. Every resident is
registered with the community health centre of their street and its family doctors; the
ones who signed a family-doctor contract name that doctor as general practitioner.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from ihs.demo import codes
from ihs.demo.body import age_on
from ihs.demo.bundle import new_urn, ref
from ihs.demo.identity import draw_sequence, mobile_phone, resident_id
from ihs.demo.names import ChineseName, draw_name, human_names
from ihs.demo.places import DISTRICTS, District, draw_birthplace, draw_home
from ihs.demo.region import Region, Site, Staff

# share of the population in each 5-year age band from 0-4 to 90-94 (2020 census, rounded)
AGE_BANDS = [5.4, 6.5, 6.1, 5.3, 5.3, 6.5, 8.8, 6.9, 6.5, 8.0, 8.6, 7.2, 5.2, 5.0, 3.4, 2.3, 1.5, 0.8, 0.3]
DISTRICT_SHARES = [0.35, 0.15, 0.15, 0.2, 0.15]
MARITAL = {"M": "Married", "S": "Never Married", "W": "Widowed", "D": "Divorced"}


@dataclass
class Registry:
    """What must stay unique across residents: ID numbers and each institution's MRNs."""

    resident_ids: set[str] = field(default_factory=set)
    mrn_counters: dict[str, int] = field(default_factory=dict)

    def next_mrn(self, organization_code: str) -> str:
        number = self.mrn_counters.get(organization_code, 0) + 1
        self.mrn_counters[organization_code] = number
        return f"{number:08d}"


@dataclass
class Resident:
    urn: str
    patient: dict
    name: ChineseName
    gender: str
    birth_date: date
    id_number: str
    district: District
    centre: Site  # the community health centre the resident is registered with
    family_doctor: Staff

    def reference(self) -> dict:
        return ref(self.urn, self.name.text)

    def age(self, on: date) -> float:
        return age_on(self.birth_date, on)

    def register_at(self, site: Site, registry: Registry):
        """Give the resident a medical record number at an institution, once."""
        system = codes.mrn_system(site.facility.code)
        if any(i.get("system") == system for i in self.patient["identifier"]):
            return
        self.patient["identifier"].append({
            "use": "usual",
            "type": codes.concept(codes.IDENTIFIER_TYPE, "MR", "Medical record number"),
            "system": system,
            "value": registry.next_mrn(site.facility.code),
            "assigner": site.provider(),
        })

    def sign_family_doctor(self):
        self.patient["generalPractitioner"] = [self.family_doctor.as_reference()]


def _birth_date(rng: random.Random, anchor: date) -> date:
    band = rng.choices(range(len(AGE_BANDS)), weights=AGE_BANDS)[0]
    return anchor - timedelta(days=rng.randrange(band * 1826, (band + 1) * 1826) + 1)


def _marital_status(rng: random.Random, age: float) -> str | None:
    if age < 20:
        return None
    if age < 30:
        return "M" if rng.random() < 0.5 else "S"
    choices = ("M", "D", "S", "W")
    weights = (88, 5, 5, 2) if age < 60 else (75, 3, 2, 20)
    return rng.choices(choices, weights=weights)[0]


def _unique_id(rng: random.Random, area: str, birth: date, gender: str, registry: Registry) -> str:
    while True:
        number = resident_id(area, birth, draw_sequence(rng, gender))
        if number not in registry.resident_ids:
            registry.resident_ids.add(number)
            return number


def draw_resident(rng: random.Random, region: Region, registry: Registry, anchor: date) -> Resident:
    """A new resident living in the region on the anchor date."""
    gender = "male" if rng.random() < 0.512 else "female"
    birth = _birth_date(rng, anchor)
    age = age_on(birth, anchor)
    name = draw_name(rng, gender, birth.year)
    district = rng.choices(DISTRICTS, weights=DISTRICT_SHARES)[0]
    street, home = draw_home(rng, district)
    birthplace = draw_birthplace(rng, district)
    id_number = _unique_id(rng, birthplace.code, birth, gender, registry)
    centre = region.community_centre(district, street)
    urn = new_urn(rng)
    patient = {
        "resourceType": "Patient",
        "extension": [{"url": codes.BIRTH_PLACE, "valueAddress": {
            "city": birthplace.city, "district": birthplace.name, "state": birthplace.province, "country": "CN"}}],
        "identifier": [{"use": "official",
                        "type": codes.concept(codes.IDENTIFIER_TYPE, "NI", "National unique individual identifier",
                                              "居民身份证"),
                        "system": codes.RESIDENT_ID, "value": id_number}],
        "active": True,
        "name": human_names(name),
        # children under 12 are reached on a parent's phone
        "telecom": [{"system": "phone", "value": mobile_phone(rng), "use": "mobile" if age >= 12 else "home"}],
        "gender": gender,
        "birthDate": birth.isoformat(),
        "address": [home],
    }
    marital = _marital_status(rng, age)
    if marital:
        patient["maritalStatus"] = codes.concept(codes.MARITAL_STATUS, marital, MARITAL[marital])
    patient["communication"] = [{"language": codes.concept(codes.BCP47, "zh-CN", "Chinese (China)", "中文"),
                                 "preferred": True}]
    patient["managingOrganization"] = centre.provider()
    doctor = rng.choice(centre.members("doctor"))
    return Resident(urn, patient, name, gender, birth, id_number, district, centre, doctor)
