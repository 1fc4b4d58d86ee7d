"""Prescriptions: drugs coded by RxNorm ingredient, named by their Chinese generic names.

The coding carries the RxNorm ingredient (RxCUI) and its English name; the text carries
the product as a Chinese prescription names it (苯磺酸氨氯地平片 5mg). Each condition maps
to the drugs Chinese guidelines start with.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ihs.demo import codes
from ihs.demo.timeline import Visit, fhir_datetime


@dataclass(frozen=True)
class Drug:
    rxcui: str
    english: str
    chinese: str  # generic name
    product: str  # the product as prescribed
    dose: float
    unit: str  # UCUM
    per_day: int  # 0: as needed
    route: str  # key of ROUTES
    per_kg: float | None = None  # children under 12 get this dose per kg body weight, up to `dose`
    child_product: str | None = None  # the paediatric form children are given


DRUGS = {key: Drug(*fields) for key, fields in {
    "amlodipine": ("17767", "amlodipine", "氨氯地平", "苯磺酸氨氯地平片", 5, "mg", 1, "oral"),
    "nifedipine": ("7417", "nifedipine", "硝苯地平", "硝苯地平控释片", 30, "mg", 1, "oral"),
    "losartan": ("52175", "losartan", "氯沙坦", "氯沙坦钾片", 50, "mg", 1, "oral"),
    "metformin": ("6809", "metformin", "二甲双胍", "盐酸二甲双胍片", 500, "mg", 3, "oral"),
    "acarbose": ("16681", "acarbose", "阿卡波糖", "阿卡波糖片", 50, "mg", 3, "oral"),
    "insulin-glargine": ("274783", "insulin glargine", "甘精胰岛素", "甘精胰岛素注射液", 12, "[IU]", 1, "subcutaneous"),
    "atorvastatin": ("83367", "atorvastatin", "阿托伐他汀", "阿托伐他汀钙片", 20, "mg", 1, "oral"),
    "aspirin": ("1191", "aspirin", "阿司匹林", "阿司匹林肠溶片", 100, "mg", 1, "oral"),
    "clopidogrel": ("32968", "clopidogrel", "氯吡格雷", "硫酸氢氯吡格雷片", 75, "mg", 1, "oral"),
    "metoprolol": ("6918", "metoprolol", "美托洛尔", "琥珀酸美托洛尔缓释片", 47.5, "mg", 1, "oral"),
    "tiotropium": ("69120", "tiotropium", "噻托溴铵", "噻托溴铵粉吸入剂", 18, "ug", 1, "inhaled"),
    "albuterol": ("435", "albuterol", "沙丁胺醇", "硫酸沙丁胺醇吸入气雾剂", 200, "ug", 0, "inhaled"),
    "budesonide": ("19831", "budesonide", "布地奈德", "布地奈德吸入气雾剂", 200, "ug", 2, "inhaled"),
    "oseltamivir": ("260101", "oseltamivir", "奥司他韦", "磷酸奥司他韦胶囊", 75, "mg", 2, "oral", 2.5, "磷酸奥司他韦颗粒"),
    "acetaminophen": ("161", "acetaminophen", "对乙酰氨基酚", "对乙酰氨基酚片", 500, "mg", 0, "oral", 12, "对乙酰氨基酚混悬滴剂"),
    "ibuprofen": ("5640", "ibuprofen", "布洛芬", "布洛芬缓释胶囊", 300, "mg", 2, "oral", 8, "布洛芬混悬液"),
    "loperamide": ("6468", "loperamide", "洛哌丁胺", "盐酸洛哌丁胺胶囊", 2, "mg", 0, "oral"),
}.items()}

# condition -> alternatives, each a list of drugs taken together (first alternative most common)
REGIMENS = {
    "hypertension": [["amlodipine"], ["losartan"], ["nifedipine"], ["amlodipine", "losartan"]],
    "diabetes": [["metformin"], ["metformin", "acarbose"], ["metformin", "insulin-glargine"]],
    "hyperlipidaemia": [["atorvastatin"]],
    "coronary": [["aspirin", "atorvastatin", "metoprolol"]],
    "stroke": [["aspirin", "atorvastatin"], ["clopidogrel", "atorvastatin"]],
    "copd": [["tiotropium", "albuterol"]],
    "asthma": [["budesonide", "albuterol"]],
    "influenza": [["oseltamivir", "acetaminophen"], ["oseltamivir"]],
    "urti": [["acetaminophen"], ["ibuprofen"], []],
    "gastroenteritis": [["loperamide"], []],
}
REGIMEN_WEIGHTS = {"hypertension": [5, 3, 2, 2], "diabetes": [6, 2, 1], "stroke": [3, 1], "influenza": [2, 1],
                   "urti": [3, 2, 3], "gastroenteritis": [1, 2]}

ROUTES = {"oral": ("26643006", "Oral use", "口服"), "subcutaneous": ("34206005", "SC use", "皮下注射"),
          "inhaled": ("447694001", "Respiratory tract route", "吸入")}
UNIT_TEXT = {"mg": "mg", "ug": "μg", "[IU]": "单位"}
COURSES = {True: ("continuous", "Continuous long term therapy"), False: ("acute", "Short course (acute) therapy")}
FREQUENCY_TEXT = {1: "每日1次", 2: "每日2次", 3: "每日3次"}


def child_form(drug: Drug, weight: float) -> tuple[str, float]:
    """The product and dose (by body weight, rounded to 5) a child under 12 is given."""
    if drug.per_kg is None:
        return drug.product, drug.dose
    return drug.child_product, min(drug.dose, max(5, round(weight * drug.per_kg / 5) * 5))


def dosage(drug: Drug, days: int, product: str, dose: float) -> dict:
    """The Dosage of a drug: dose, route, and times a day (or as needed)."""
    code, display, route_text = ROUTES[drug.route]
    dose_text = f"每次{dose:g}{UNIT_TEXT[drug.unit]}"
    result = {
        "sequence": 1,
        "text": f"{product} {dose_text}，{FREQUENCY_TEXT.get(drug.per_day, '必要时')}，{route_text}",
        "route": codes.concept(codes.SNOMED, code, display, route_text),
        "doseAndRate": [{"doseQuantity": codes.quantity(dose, drug.unit)}],
    }
    if drug.per_day:
        result["timing"] = {"repeat": {"boundsDuration": codes.quantity(days, "d"),
                                       "frequency": drug.per_day, "period": 1, "periodUnit": "d"}}
    else:
        result["asNeededBoolean"] = True
    return result


def medication_request(drug: Drug, patient: dict, visit: Visit, reasons: list[dict], *, status: str,
                       days: int, long_term: bool, category: str = "outpatient",
                       authored: datetime | None = None, child_weight: float | None = None) -> dict:
    """A MedicationRequest written at the visit, supplying `days` of the drug.

    `child_weight` (kg) is given for a child under 12, who gets the paediatric form and dose.
    """
    product, dose = child_form(drug, child_weight) if child_weight else (drug.product, drug.dose)
    return {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "category": [codes.concept(codes.MEDICATION_CATEGORY, category, category.capitalize())],
        "medicationCodeableConcept": codes.concept(codes.RXNORM, drug.rxcui, drug.english,
                                                   f"{product}（{drug.chinese}）"),
        "subject": patient,
        "encounter": {"reference": visit.urn},
        "authoredOn": fhir_datetime(authored or visit.end),
        "requester": visit.practitioner.as_reference(),
        "reasonReference": reasons,
        "courseOfTherapyType": codes.concept(codes.COURSE_OF_THERAPY, *COURSES[long_term]),
        "dosageInstruction": [dosage(drug, days, product, dose)],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "days", "system": codes.UCUM,
                                                       "code": "d"}},
    }
