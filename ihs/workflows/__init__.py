"""Workflows over FHIR resources: prescribing and dispensing (and, beside them, booking, referral, billing)."""
