"""The region's shared resources: Organizations, Locations, Practitioners, PractitionerRoles.

`build_region` makes them as one transaction Bundle (see ihs/demo/bundle.py for the
reference scheme) and returns, beside it, the `Region`: what the residents' Bundles need
to refer to those resources by conditional reference.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from ihs.demo import codes
from ihs.demo.bundle import conditional, entry, new_urn, ref, transaction
from ihs.demo.facilities import DEPARTMENTS, FACILITIES, FAMILY_PRACTICE, STAFFING, Facility
from ihs.demo.names import draw_name, human_names
from ihs.demo.places import CITY, District, address

ORGANIZATION_TYPES = {
    "authority": [("govt", "Government")],
    "cdc": [("govt", "Government")],
    "payer": [("govt", "Government"), ("pay", "Payer")],
    "community": [("prov", "Healthcare Provider")],
    "secondary": [("prov", "Healthcare Provider")],
    "tertiary": [("prov", "Healthcare Provider")],
}
LEVELS = {"community": ("primary", "基层医疗卫生机构"), "secondary": ("secondary", "二级医院"),
          "tertiary": ("tertiary", "三级医院")}
LOCATION_TYPES = {"community": ("PC", "Primary care clinic"), "secondary": ("HOSP", "Hospital"),
                  "tertiary": ("HOSP", "Hospital")}
ROLES = {"doctor": ("Doctor", "医师"), "nurse": ("Nurse", "护士"), "pharmacist": ("Pharmacist", "药师")}
SHARE_FEMALE = {"doctor": 0.45, "nurse": 0.95, "pharmacist": 0.6}


@dataclass(frozen=True)
class Staff:
    reference: str  # conditional reference to the Practitioner
    name: str
    role: str
    department: str | None

    def as_reference(self) -> dict:
        return ref(self.reference, self.name)


@dataclass
class Site:
    """An institution as the residents' Bundles see it: conditional references and staff."""

    facility: Facility
    reference: str
    location: str | None = None
    departments: dict[str, str] = field(default_factory=dict)  # department key -> conditional reference
    staff: list[Staff] = field(default_factory=list)

    def members(self, role: str, department: str | None = None) -> list[Staff]:
        return [s for s in self.staff if s.role == role and s.department == department]

    def provider(self, department: str | None = None) -> dict:
        """A Reference to the institution, or to one of its departments."""
        if department:
            return ref(self.departments[department], f"{self.facility.name}{DEPARTMENTS[department].name}")
        return ref(self.reference, self.facility.name)

    def location_reference(self) -> dict:
        return ref(self.location, self.facility.name)


@dataclass
class Region:
    bundle: dict
    sites: list[Site]

    def of_kind(self, kind: str) -> list[Site]:
        return [s for s in self.sites if s.facility.kind == kind]

    def community_centre(self, district: District, street: str) -> Site:
        """The community health centre serving a street: its own, else the district's first."""
        centres = [s for s in self.of_kind("community") if s.facility.district == district]
        return next((s for s in centres if s.facility.street == street), centres[0])

    def local_hospital(self, district: District) -> Site:
        """The hospital a district's residents go to first: their county's, else the city's."""
        hospitals = self.of_kind("secondary") + self.of_kind("tertiary")
        return next(s for s in hospitals if s.facility.district == district)

    def city_hospital(self) -> Site:
        return next(s for s in self.of_kind("tertiary") if s.facility.district.city == CITY)

    def provincial_hospital(self) -> Site:
        return next(s for s in self.of_kind("tertiary") if s.facility.district.city != CITY)


def _phone(rng: random.Random, district: District) -> dict:
    # Hangzhou numbers have 8 digits after 0571, Huzhou numbers 7 after 0572
    number = f"0571-8{rng.randrange(10 ** 7):07d}" if district.city != CITY else f"0572-2{rng.randrange(10 ** 6):06d}"
    return {"system": "phone", "value": number, "use": "work"}


def _identifier(system: str, value: str) -> list[dict]:
    return [{"use": "official", "system": system, "value": value}]


def _organization(facility: Facility, rng: random.Random) -> dict:
    types = [codes.concept(codes.ORGANIZATION_TYPE, *kind) for kind in ORGANIZATION_TYPES[facility.kind]]
    if facility.kind in LEVELS:
        types.append(codes.concept(codes.FACILITY_LEVEL, *LEVELS[facility.kind]))
    return {
        "resourceType": "Organization",
        "identifier": _identifier(codes.ORGANIZATION_CODE, facility.code),
        "active": True,
        "type": types,
        "name": facility.name,
        "alias": [facility.english],
        "telecom": [_phone(rng, facility.district)],
        "address": [address(facility.district, facility.street, facility.line, use="work")],
    }


def _department(facility: Facility, key: str, parent_urn: str) -> dict:
    department = DEPARTMENTS[key]
    return {
        "resourceType": "Organization",
        "identifier": _identifier(codes.ORGANIZATION_CODE, f"{facility.code}-{key}"),
        "active": True,
        "type": [codes.concept(codes.ORGANIZATION_TYPE, "dept", "Hospital Department")],
        "name": f"{facility.name}{department.name}",
        "alias": [f"{facility.english}, {department.english}"],
        "partOf": ref(parent_urn, facility.name),
    }


def _location(facility: Facility, organization_urn: str, rng: random.Random) -> dict:
    district = facility.district
    return {
        "resourceType": "Location",
        "identifier": _identifier(codes.LOCATION_CODE, facility.code),
        "status": "active",
        "name": facility.name,
        "alias": [facility.english],
        "mode": "instance",
        "type": [codes.concept(codes.LOCATION_ROLE, *LOCATION_TYPES[facility.kind])],
        "telecom": [_phone(rng, district)],
        "address": address(district, facility.street, facility.line, use="work"),
        "physicalType": codes.concept(codes.LOCATION_PHYSICAL_TYPE, "bu", "Building"),
        "position": {"longitude": round(district.longitude + rng.uniform(-0.02, 0.02), 5),
                     "latitude": round(district.latitude + rng.uniform(-0.02, 0.02), 5)},
        "managingOrganization": ref(organization_urn, facility.name),
    }


class _RegionBuilder:
    """Accumulates the region's entries and the Sites that point at them."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.entries: list[dict] = []
        self.licences: set[str] = set()

    def add(self, resource: dict, system: str, value: str) -> tuple[str, str]:
        """Add a shared resource; return its urn (this Bundle) and conditional reference (others)."""
        urn = new_urn(self.rng)
        self.entries.append(entry(urn, resource, f"identifier={system}|{value}"))
        return urn, conditional(resource["resourceType"], system, value)

    def site(self, facility: Facility) -> Site:
        org_urn, org_ref = self.add(_organization(facility, self.rng), codes.ORGANIZATION_CODE, facility.code)
        site = Site(facility, org_ref)
        if not facility.provides_care:
            return site
        location = _location(facility, org_urn, self.rng)
        location_urn, site.location = self.add(location, codes.LOCATION_CODE, facility.code)
        if facility.kind == "community":
            for role, count in STAFFING["community"]:
                self.staff(site, role, count, org_urn, location_urn, None)
            return site
        for key in facility.departments:
            code = f"{facility.code}-{key}"
            department = _department(facility, key, org_urn)
            dept_urn, site.departments[key] = self.add(department, codes.ORGANIZATION_CODE, code)
            for role, count in STAFFING["department"]:
                self.staff(site, role, count, dept_urn, location_urn, key)
        for role, count in STAFFING["hospital"]:
            self.staff(site, role, count, org_urn, location_urn, None)
        return site

    def staff(self, site: Site, role: str, count: int, org_urn: str, location_urn: str, department: str | None):
        for _ in range(count):
            gender = "female" if self.rng.random() < SHARE_FEMALE[role] else "male"
            birth = date(self.rng.randrange(1965, 1999), self.rng.randrange(1, 13), self.rng.randrange(1, 29))
            name = draw_name(self.rng, gender, birth.year)
            licence = self.licence(15 if role == "doctor" else 12)
            practitioner = {
                "resourceType": "Practitioner",
                "identifier": _identifier(codes.PRACTITIONER_CODE, licence),
                "active": True,
                "name": human_names(name),
                "gender": gender,
                "birthDate": birth.isoformat(),
            }
            urn, reference = self.add(practitioner, codes.PRACTITIONER_CODE, licence)
            unit = f"{site.facility.code}-{department}" if department else site.facility.code
            position = f"{unit}/{licence}"
            self.add(_role(site.facility, role, department, urn, name.text, org_urn, location_urn, position),
                     codes.PRACTITIONER_ROLE_CODE, position)
            site.staff.append(Staff(reference, name.text, role, department))

    def licence(self, digits: int) -> str:
        while True:
            number = str(self.rng.randrange(10 ** (digits - 1), 10 ** digits))
            if number not in self.licences:
                self.licences.add(number)
                return number


def _role(facility: Facility, role: str, department: str | None, practitioner_urn: str, name: str,
          org_urn: str, location_urn: str, position: str) -> dict:
    english, chinese = ROLES[role]
    if role == "doctor" and facility.kind == "community":
        chinese = "家庭医生"
    resource = {
        "resourceType": "PractitionerRole",
        "identifier": _identifier(codes.PRACTITIONER_ROLE_CODE, position),
        "active": True,
        "practitioner": ref(practitioner_urn, name),
        "organization": ref(org_urn),
        "code": [codes.concept(codes.PRACTITIONER_ROLE, role, english, chinese)],
        "location": [ref(location_urn, facility.name)],
    }
    if role == "doctor":
        code, display = DEPARTMENTS[department].specialty if department else FAMILY_PRACTICE
        resource["specialty"] = [codes.concept(codes.SNOMED, code, display)]
    return resource


def build_region(rng: random.Random) -> Region:
    """The region's shared resources as a transaction Bundle, and the Region that refers to them."""
    builder = _RegionBuilder(rng)
    sites = [builder.site(facility) for facility in FACILITIES]
    return Region(transaction(builder.entries), sites)
