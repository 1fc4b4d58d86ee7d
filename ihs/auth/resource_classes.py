"""The resource types each role works with: the tables the access policy reads (ihs/auth/policy.py)."""
from __future__ import annotations

# directory, terminology and conformance resources: visible to every role but devices
OPEN_TYPES = frozenset({
    "Organization", "OrganizationAffiliation", "Location", "Practitioner", "PractitionerRole", "HealthcareService",
    "Endpoint", "Medication", "MedicationKnowledge", "Substance", "ValueSet", "CodeSystem", "ConceptMap",
    "NamingSystem", "StructureDefinition", "StructureMap", "SearchParameter", "OperationDefinition",
    "CapabilityStatement", "CompartmentDefinition", "ImplementationGuide", "Questionnaire", "PlanDefinition",
    "ActivityDefinition", "Library", "Measure", "Subscription",
})

# de-identified aggregates: what a regulator sees (besides the open types)
AGGREGATE_TYPES = frozenset({"MeasureReport", "Measure", "Library"})

# an insurer's data, and the search parameter naming the insurer on each
INSURANCE_TYPES = {"Coverage": "payor", "Claim": "insurer", "ClaimResponse": "insurer",
                   "ExplanationOfBenefit": "coverage.payor"}

# what a pharmacist sees of a patient's record
PHARMACY_TYPES = frozenset({
    "Patient", "MedicationRequest", "MedicationDispense", "MedicationAdministration", "MedicationStatement",
    "AllergyIntolerance", "Condition", "Observation", "DiagnosticReport", "Encounter", "Coverage",
    "DetectedIssue", "Communication", "Task", "Consent", "ServiceRequest",
})

# what a patient (or their proxy) may write into their own record
PATIENT_WRITABLE = frozenset({
    "Observation", "QuestionnaireResponse", "Appointment", "Communication", "CommunicationRequest", "Consent",
    "DocumentReference", "RelatedPerson", "Patient", "Task",
})

# an organization administrator's directory
DIRECTORY_TYPES = {
    "Organization": "partOf", "Location": "managingOrganization", "PractitionerRole": "organization",
    "HealthcareService": "providedBy", "Endpoint": "managingOrganization", "Practitioner": None,
    "Schedule": None, "Slot": None,
}

# what a CDC officer may write: surveillance results and alerts
SURVEILLANCE_WRITABLE = frozenset({"MeasureReport", "Measure", "Communication"})

# resources clinical staff never see: audit trails are for patients, auditors and the system
STAFF_HIDDEN = frozenset({"AuditEvent"})

# resources that start a treatment relationship at the organization they name
CARE_STARTING = {"Encounter": "serviceProvider", "EpisodeOfCare": "managingOrganization"}
