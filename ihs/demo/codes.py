"""Code systems, identifier systems and the small builders for codings the demo region uses.

Identifier systems of the demo region live under `IHS_SID`, IHS's own namespace (an
example.org address, so it can never clash with a real registry), beside one code system
of IHS's own, the level of care of an institution; the resident ID number
uses the national OID for the GB 11643 citizen identity number. Everything else is an
official HL7, LOINC, SNOMED CT, ICD-10, RxNorm or UCUM system.
"""
from __future__ import annotations

IHS_SID = "https://ihs.example.org/fhir/sid"
ORGANIZATION_CODE = f"{IHS_SID}/organization"  # the region's registry code of an institution or department
LOCATION_CODE = f"{IHS_SID}/location"
PRACTITIONER_CODE = f"{IHS_SID}/practitioner"  # practice certificate number
PRACTITIONER_ROLE_CODE = f"{IHS_SID}/practitioner-role"  # <unit code>/<practice certificate number>
RESIDENT_ID = "urn:oid:2.16.156.10011.1.1"  # GB 11643 citizen identity number
FACILITY_LEVEL = "https://ihs.example.org/fhir/CodeSystem/facility-level"


def mrn_system(organization_code: str) -> str:
    """The medical record number system of one institution."""
    return f"{IHS_SID}/mrn/{organization_code}"


LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
BCP47 = "urn:ietf:bcp:47"

TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
ORGANIZATION_TYPE = f"{TERMINOLOGY}/organization-type"
PRACTITIONER_ROLE = f"{TERMINOLOGY}/practitioner-role"
IDENTIFIER_TYPE = f"{TERMINOLOGY}/v2-0203"
MARITAL_STATUS = f"{TERMINOLOGY}/v3-MaritalStatus"
ACT_CODE = f"{TERMINOLOGY}/v3-ActCode"
PARTICIPATION_TYPE = f"{TERMINOLOGY}/v3-ParticipationType"
LOCATION_ROLE = f"{TERMINOLOGY}/v3-RoleCode"
LOCATION_PHYSICAL_TYPE = f"{TERMINOLOGY}/location-physical-type"
OBSERVATION_CATEGORY = f"{TERMINOLOGY}/observation-category"
INTERPRETATION = f"{TERMINOLOGY}/v3-ObservationInterpretation"
CONDITION_CLINICAL = f"{TERMINOLOGY}/condition-clinical"
CONDITION_VERIFICATION = f"{TERMINOLOGY}/condition-ver-status"
CONDITION_CATEGORY = f"{TERMINOLOGY}/condition-category"
DIAGNOSIS_ROLE = f"{TERMINOLOGY}/diagnosis-role"
ADMIT_SOURCE = f"{TERMINOLOGY}/admit-source"
DISCHARGE_DISPOSITION = f"{TERMINOLOGY}/discharge-disposition"
MEDICATION_CATEGORY = f"{TERMINOLOGY}/medicationrequest-category"
COURSE_OF_THERAPY = f"{TERMINOLOGY}/medicationrequest-course-of-therapy"
APPOINTMENT_TYPE = f"{TERMINOLOGY}/v2-0276"

REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"


def coding(system: str, code: str, display: str | None = None) -> dict:
    """A Coding; `display` is left out when not given."""
    result = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict:
    """A CodeableConcept with one coding and an optional text."""
    result = {"coding": [coding(system, code, display)]}
    if text:
        result["text"] = text
    return result


def bilingual(system: str, code: str, english: str, chinese: str) -> dict:
    """A CodeableConcept whose coding shows English with a zh-CN translation, and Chinese text."""
    translated = coding(system, code, english)
    translated["_display"] = {"extension": [{"url": TRANSLATION, "extension": [
        {"url": "lang", "valueCode": "zh-CN"},
        {"url": "content", "valueString": chinese},
    ]}]}
    return {"coding": [translated], "text": chinese}


def quantity(value: float, unit: str) -> dict:
    """A UCUM Quantity whose human unit is the UCUM code."""
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}
