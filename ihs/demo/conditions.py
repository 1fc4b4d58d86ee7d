"""Diagnoses in WHO ICD-10 with English and Chinese names, and how common each one is.

Prevalence by age follows the orders of magnitude reported for China (about one adult
in four with hypertension, one in nine with diabetes, COPD in one in seven over 40), and
conditions that travel together (hypertension, diabetes, coronary disease, stroke) make
one another more likely.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ihs.demo import codes
from ihs.demo.timeline import fhir_datetime


@dataclass(frozen=True)
class Disease:
    key: str
    icd10: str
    english: str
    chinese: str


DISEASES = {d.key: d for d in [
    Disease("hypertension", "I10", "Essential (primary) hypertension", "原发性高血压"),
    Disease("diabetes", "E11.9", "Type 2 diabetes mellitus without complications", "2型糖尿病"),
    Disease("hyperlipidaemia", "E78.5", "Hyperlipidaemia, unspecified", "高脂血症"),
    Disease("coronary", "I25.1", "Atherosclerotic heart disease", "冠状动脉粥样硬化性心脏病"),
    Disease("stroke", "I63.9", "Cerebral infarction, unspecified", "脑梗死"),
    Disease("copd", "J44.9", "Chronic obstructive pulmonary disease, unspecified", "慢性阻塞性肺疾病"),
    Disease("copd-exacerbation", "J44.1",
            "Chronic obstructive pulmonary disease with acute exacerbation, unspecified", "慢性阻塞性肺疾病急性加重"),
    Disease("asthma", "J45.9", "Asthma, unspecified", "支气管哮喘"),
    Disease("influenza", "J11.1", "Influenza with other respiratory manifestations, virus not identified", "流行性感冒"),
    Disease("urti", "J06.9", "Acute upper respiratory infection, unspecified", "急性上呼吸道感染"),
    Disease("gastroenteritis", "A09.9", "Gastroenteritis and colitis of unspecified origin", "急性胃肠炎"),
]}

# chronic condition -> (earliest age at onset, [(from age, prevalence)]), checked in this order
PREVALENCE = {
    "hypertension": (25, [(18, 0.05), (35, 0.12), (45, 0.25), (55, 0.40), (65, 0.52), (75, 0.60)]),
    "diabetes": (30, [(18, 0.02), (35, 0.05), (45, 0.10), (55, 0.15), (65, 0.20)]),
    "hyperlipidaemia": (30, [(18, 0.04), (35, 0.10), (55, 0.15)]),
    "coronary": (40, [(45, 0.02), (55, 0.05), (65, 0.09), (75, 0.13)]),
    "stroke": (40, [(45, 0.01), (55, 0.025), (65, 0.05), (75, 0.08)]),
    "copd": (40, [(40, 0.05), (55, 0.10), (65, 0.16)]),
    "asthma": (3, [(3, 0.02)]),
}
# condition -> conditions that raise its odds, and by how much
RISK_FACTORS = {"diabetes": ("hypertension", 1.5), "hyperlipidaemia": ("diabetes", 1.5),
                "coronary": ("hypertension", 1.6), "stroke": ("hypertension", 1.6)}


def _prevalence(bands: list[tuple[int, float]], age: float) -> float:
    return next((p for start, p in reversed(bands) if age >= start), 0.0)


def draw_chronic(rng: random.Random, age: float, gender: str, anchor: date) -> dict[str, date]:
    """The chronic conditions a resident of this age and sex has, each with its onset date."""
    onsets: dict[str, date] = {}
    for key, (earliest, bands) in PREVALENCE.items():
        odds = _prevalence(bands, age)
        if key == "copd":
            odds *= 1.6 if gender == "male" else 0.6
        factor = RISK_FACTORS.get(key)
        if factor and factor[0] in onsets:
            odds *= factor[1]
        if age > earliest and rng.random() < odds:
            years_ago = rng.uniform(0.3, min(age - earliest, 20.0))
            onsets[key] = anchor - timedelta(days=round(years_ago * 365.25))
    return onsets


def condition(disease: Disease, patient: dict, onset: date | datetime, recorded: date | datetime,
              *, category: str = "problem-list-item", encounter: str | None = None,
              recorder: dict | None = None, abated: datetime | None = None) -> dict:
    """A confirmed Condition; resolved when `abated` is given, else active."""
    def when(moment):
        return fhir_datetime(moment) if isinstance(moment, datetime) else moment.isoformat()

    resource = {
        "resourceType": "Condition",
        "clinicalStatus": codes.concept(codes.CONDITION_CLINICAL, *(("resolved", "Resolved") if abated else
                                                                    ("active", "Active"))),
        "verificationStatus": codes.concept(codes.CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        "category": [codes.concept(codes.CONDITION_CATEGORY, category, {
            "problem-list-item": "Problem List Item", "encounter-diagnosis": "Encounter Diagnosis"}[category])],
        "code": codes.bilingual(codes.ICD10, disease.icd10, disease.english, disease.chinese),
        "subject": patient,
        "onsetDateTime": when(onset),
        "recordedDate": when(recorded),
    }
    if encounter:
        resource["encounter"] = {"reference": encounter}
    if abated:
        resource["abatementDateTime"] = when(abated)
    if recorder:
        resource["recorder"] = recorder
    return resource
