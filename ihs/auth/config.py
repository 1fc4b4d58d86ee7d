"""Settings of the authorization server and the access policy, from the environment.

| variable | default | meaning |
| --- | --- | --- |
| IHS_CONSENT_DEFAULT | opt-out | the regional default when a patient has no privacy Consent: `opt-out` (sharing permitted until the patient objects) or `opt-in` (no sharing without a permitting Consent) |
| IHS_TREATMENT_WINDOW_DAYS | 90 | a finished Encounter keeps the treatment relationship this long after its end |
| IHS_BREAK_GLASS_MINUTES | 60 | how long an emergency access grant lasts |
| IHS_PRIVACY_OFFICER | (none) | reference notified of every break-the-glass access (e.g. `Practitioner/po-1`) |
| IHS_STAFF_PATIENT_LOOKUP | 1 | clinical staff may look up Patient demographics to register a patient (0: only with a relationship) |
| IHS_POLICY_CACHE_SECONDS | 10 | how long relationships and Consents are remembered per process (0: never) |
| IHS_ACCESS_TOKEN_SECONDS | 900 | access token lifetime |
| IHS_REFRESH_TOKEN_DAYS | 30 | refresh token lifetime (offline_access) |
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class PolicyConfig:
    default_sharing: str = field(default_factory=lambda: _env("IHS_CONSENT_DEFAULT", "opt-out"))
    treatment_window_days: int = field(default_factory=lambda: int(_env("IHS_TREATMENT_WINDOW_DAYS", "90")))
    break_glass_minutes: int = field(default_factory=lambda: int(_env("IHS_BREAK_GLASS_MINUTES", "60")))
    privacy_officer: str | None = field(default_factory=lambda: os.environ.get("IHS_PRIVACY_OFFICER") or None)
    staff_patient_lookup: bool = field(default_factory=lambda: _env("IHS_STAFF_PATIENT_LOOKUP", "1") == "1")
    cache_seconds: float = field(default_factory=lambda: float(_env("IHS_POLICY_CACHE_SECONDS", "10")))
    max_listed_patients: int = 50_000  # a search restriction lists at most this many patients per rule

    def __post_init__(self):
        if self.default_sharing not in ("opt-out", "opt-in"):
            raise ValueError(f"IHS_CONSENT_DEFAULT is opt-out or opt-in, not {self.default_sharing!r}")

    @property
    def consent_default(self) -> str:
        """The consent decision without any Consent: permit (opt-out region) or deny (opt-in region)."""
        return "permit" if self.default_sharing == "opt-out" else "deny"


@dataclass(frozen=True)
class TokenConfig:
    access_seconds: int = field(default_factory=lambda: int(_env("IHS_ACCESS_TOKEN_SECONDS", "900")))
    refresh_days: int = field(default_factory=lambda: int(_env("IHS_REFRESH_TOKEN_DAYS", "30")))
    code_seconds: int = 60  # an authorization code is exchanged within a minute
    assertion_max_seconds: int = 300  # a client assertion expires at most 5 minutes ahead (SMART Backend Services)
