"""Who is calling: the authenticated principal every policy decision and audit record is about."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ihs.auth.scopes import Scopes, parse_scopes

PATIENT = "patient"
PRACTITIONER = "practitioner"
NURSE = "nurse"
PHARMACIST = "pharmacist"
ORG_ADMIN = "org-admin"
REGULATOR = "regulator"
CDC_OFFICER = "cdc-officer"
INSURER = "insurer"
DEVICE = "device"
SYSTEM = "system"

ROLES = (PATIENT, PRACTITIONER, NURSE, PHARMACIST, ORG_ADMIN, REGULATOR, CDC_OFFICER, INSURER, DEVICE, SYSTEM)
CLINICAL_ROLES = frozenset({PRACTITIONER, NURSE, PHARMACIST})

# PractitionerRole.code (http://terminology.hl7.org/CodeSystem/practitioner-role) -> IHS role
PRACTITIONER_ROLE_CODES = {"doctor": PRACTITIONER, "nurse": NURSE, "pharmacist": PHARMACIST}


@dataclass(frozen=True)
class BreakGlass:
    """An emergency-access claim: why, and where it came from (the X-Break-Glass header or the token)."""

    reason: str
    source: str = "header"  # header | token


@dataclass(frozen=True)
class Principal:
    """The caller of one request, from a validated access token.

    `subject` is the account (username) or, for a backend client, its client id; `organizations` are
    `Organization/<id>` references (an institution and its departments); `patient` is the launch
    patient context (`launch/patient`), or a device's bound patient.
    """

    subject: str
    roles: frozenset[str]
    scopes: Scopes = field(default_factory=lambda: parse_scopes(""))
    client_id: str | None = None
    fhir_user: str | None = None
    organizations: tuple[str, ...] = ()
    patient: str | None = None
    break_glass: BreakGlass | None = None
    token_id: str | None = None
    expires_at: int | None = None

    @property
    def is_clinical_staff(self) -> bool:
        return bool(self.roles & CLINICAL_ROLES)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def fhir_user_type(self) -> str | None:
        return self.fhir_user.split("/", 1)[0] if self.fhir_user else None

    @property
    def fhir_user_id(self) -> str | None:
        return self.fhir_user.split("/", 1)[1] if self.fhir_user and "/" in self.fhir_user else None

    def claiming_break_glass(self, reason: str, source: str = "header") -> "Principal":
        """The same principal with an emergency-access claim."""
        return replace(self, break_glass=BreakGlass(reason, source))

    @property
    def organization_ids(self) -> frozenset[str]:
        return frozenset(ref.split("/", 1)[1] for ref in self.organizations if "/" in ref)
