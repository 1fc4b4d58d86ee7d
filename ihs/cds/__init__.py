"""Prescription safety as a CDS Hooks 2.0 service.

kb (the knowledge-base interface) and open_kb (the shipped knowledge in knowledge/), medication
(facts off a MedicationRequest), record (prefetch and FHIR access), review and checks/ (the
checks), findings and cards (what is shown), hooks and service (the CDS Hooks services),
client_auth (signed-JWT client authentication), issues (DetectedIssue storage), gate (the
block-unless-overridden rule of signing and dispensing), supervision (the regulator's indicators).
"""
