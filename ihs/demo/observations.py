"""Vital-sign and laboratory Observations, coded in LOINC with UCUM units.

Vital signs follow the R4 vital-signs profile (category vital-signs, the profile's LOINC
codes and units). Lab results use the SI units Chinese laboratories report (mmol/L,
umol/L, g/L), so they carry the LOINC codes of the molar and SI-mass properties, with the
reference ranges Chinese laboratories print.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from ihs.demo import codes
from ihs.demo.body import Body, age_on
from ihs.demo.timeline import Visit, fhir_datetime


@dataclass(frozen=True)
class Measure:
    code: str
    display: str
    chinese: str
    unit: str


VITALS = {
    "heart-rate": Measure("8867-4", "Heart rate", "心率", "/min"),
    "temperature": Measure("8310-5", "Body temperature", "体温", "Cel"),
    "weight": Measure("29463-7", "Body weight", "体重", "kg"),
    "height": Measure("8302-2", "Body height", "身高", "cm"),
    "bmi": Measure("39156-5", "Body mass index (BMI) [Ratio]", "体重指数", "kg/m2"),
    "oxygen-saturation": Measure("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "血氧饱和度", "%"),
}
BLOOD_PRESSURE = Measure("85354-9", "Blood pressure panel with all children optional", "血压", "mm[Hg]")
SYSTOLIC = Measure("8480-6", "Systolic blood pressure", "收缩压", "mm[Hg]")
DIASTOLIC = Measure("8462-4", "Diastolic blood pressure", "舒张压", "mm[Hg]")
# the vital-signs profile asks oxygen saturation to carry this code beside the pulse-oximetry one
ARTERIAL_SATURATION = codes.coding(codes.LOINC, "2708-6", "Oxygen saturation in Arterial blood")


@dataclass(frozen=True)
class LabTest:
    code: str
    display: str
    chinese: str
    unit: str
    male: tuple[float | None, float]  # reference range (low, high); no low bound when None
    female: tuple[float | None, float]
    child: tuple[float | None, float] | None = None  # under 12, when it differs from the adult range
    decimals: int = 1


def _test(code, display, chinese, unit, low, high, female=None, child=None, decimals=1):
    return LabTest(code, display, chinese, unit, (low, high), female or (low, high), child, decimals)


LABS = {
    "glucose": _test("14771-0", "Fasting glucose [Moles/volume] in Serum or Plasma", "空腹血糖", "mmol/L", 3.9, 6.1),
    "hba1c": _test("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "糖化血红蛋白", "%", 4.0, 6.0),
    "creatinine": _test("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "肌酐", "umol/L", 57, 97,
                        female=(41, 73), decimals=0),
    "cholesterol": _test("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "总胆固醇", "mmol/L", None, 5.2),
    "ldl": _test("22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma", "低密度脂蛋白胆固醇", "mmol/L",
                 None, 3.4),
    "triglycerides": _test("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "甘油三酯", "mmol/L", None, 1.7),
    "alt": _test("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
                 "丙氨酸氨基转移酶", "U/L", 9, 50, female=(7, 40), decimals=0),
    "hemoglobin": _test("718-7", "Hemoglobin [Mass/volume] in Blood", "血红蛋白", "g/L", 130, 175,
                        female=(115, 150), child=(110, 145), decimals=0),
    "wbc": _test("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "白细胞计数", "10*9/L", 3.5, 9.5,
                 child=(4.4, 12.0)),
}
PANELS = {
    "health-check": ["glucose", "creatinine", "cholesterol", "ldl", "triglycerides", "alt", "hemoglobin"],
    "diabetes-review": ["glucose", "hba1c", "creatinine"],
    "lipids": ["cholesterol", "ldl", "triglycerides"],
    "blood-count": ["wbc", "hemoglobin"],
    "admission": ["wbc", "hemoglobin", "glucose", "creatinine", "alt"],
}
INTERPRETATIONS = {"H": "High", "L": "Low", "N": "Normal"}


def _observation(category: str, category_display: str, code: dict, patient: dict, visit: Visit,
                 performer: dict, minutes: int) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [codes.concept(codes.OBSERVATION_CATEGORY, category, category_display)],
        "code": code,
        "subject": patient,
        "encounter": {"reference": visit.urn},
        "effectiveDateTime": fhir_datetime(visit.start + timedelta(minutes=minutes)),
        "performer": [performer],
    }


def _vital(measure: Measure, patient: dict, visit: Visit, value: float | None = None) -> dict:
    code = codes.concept(codes.LOINC, measure.code, measure.display, measure.chinese)
    if measure is VITALS["oxygen-saturation"]:
        code["coding"].insert(0, ARTERIAL_SATURATION)
    observation = _observation("vital-signs", "Vital Signs", code, patient, visit, visit.nurse.as_reference(), 5)
    if value is not None:
        observation["valueQuantity"] = codes.quantity(value, measure.unit)
    return observation


def _pressure_component(measure: Measure, value: int) -> dict:
    return {"code": codes.concept(codes.LOINC, measure.code, measure.display, measure.chinese),
            "valueQuantity": codes.quantity(value, measure.unit)}


def vital_signs(rng: random.Random, body: Body, patient: dict, visit: Visit, kinds: list[str],
                fever: float = 0, acute: bool = False, stress: float = 0) -> list[dict]:
    """One vital-signs Observation per kind ("blood-pressure" or a key of VITALS) taken at the visit."""
    on = visit.start.date()
    values = {
        "heart-rate": lambda: body.heart_rate(rng, on, fever),
        "temperature": lambda: body.temperature(rng, fever),
        "weight": lambda: body.weight(on),
        "height": lambda: body.height(on),
        "bmi": lambda: body.bmi(on),
        "oxygen-saturation": lambda: body.oxygen_saturation(rng, on, acute),
    }
    observations = []
    for kind in kinds:
        if kind == "blood-pressure":
            systolic, diastolic = body.blood_pressure(rng, on, stress)
            panel = _vital(BLOOD_PRESSURE, patient, visit)
            panel["component"] = [_pressure_component(SYSTOLIC, systolic), _pressure_component(DIASTOLIC, diastolic)]
            observations.append(panel)
        else:
            observations.append(_vital(VITALS[kind], patient, visit, values[kind]()))
    return observations


def reference_range(test: LabTest, body: Body, on: date) -> tuple[float | None, float]:
    """The (low, high) range printed for this person: by sex, or the children's range under 12."""
    if test.child and age_on(body.birth_date, on) < 12:
        return test.child
    return test.male if body.gender == "male" else test.female


def lab_result(test: LabTest, value: float, body: Body, patient: dict, visit: Visit) -> dict:
    """A laboratory Observation with its reference range and H/L/N interpretation."""
    value = round(value, test.decimals) if test.decimals else round(value)
    low, high = reference_range(test, body, visit.start.date())
    flag = "H" if value > high else "L" if low is not None and value < low else "N"
    observation = _observation("laboratory", "Laboratory",
                               codes.concept(codes.LOINC, test.code, test.display, test.chinese),
                               patient, visit, visit.site.provider(), 15)
    observation["issued"] = fhir_datetime(visit.start + timedelta(hours=2))
    observation["valueQuantity"] = codes.quantity(value, test.unit)
    observation["interpretation"] = [codes.concept(codes.INTERPRETATION, flag, INTERPRETATIONS[flag])]
    printed = {"high": codes.quantity(high, test.unit)}
    if low is None:
        printed["text"] = f"<{high} {test.unit}"
    else:
        printed = {"low": codes.quantity(low, test.unit), **printed}
    observation["referenceRange"] = [printed]
    return observation


def lab_panel(rng: random.Random, body: Body, patient: dict, visit: Visit, panel: str,
              infection: bool = False) -> list[dict]:
    """The results of one of PANELS drawn at the visit."""
    on = visit.start.date()
    return [lab_result(LABS[key], body.lab(rng, key, on, infection), body, patient, visit)
            for key in PANELS[panel]]
