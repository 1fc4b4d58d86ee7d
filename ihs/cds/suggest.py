"""CDS Hooks suggestions that change the order under review: remove it, replace the drug, lower the dose."""
from __future__ import annotations

import copy

from ihs.cds.kb import ATC, RXNORM, Drug


def remove(order) -> dict | None:
    """Cancel the order under review (a delete of the draft it is)."""
    if not order.ref:
        return None
    return {"label": f"取消开具 {order.label}", "actions": [
        {"type": "delete", "description": f"Remove the order for {order.label}", "resourceId": order.ref}]}


def replace(order, drug: Drug) -> dict | None:
    """Order `drug` instead, at its usual daily dose once a day when the formulary knows it."""
    if not order.ref:
        return None
    changed = copy.deepcopy(order.request)
    coding = [{"system": RXNORM, "code": drug.rxcui, "display": drug.key}] if drug.rxcui else \
        [{"system": ATC, "code": drug.atc[0], "display": drug.key}]
    changed["medicationCodeableConcept"] = {"coding": coding, "text": drug.zh or drug.key}
    changed.pop("medicationReference", None)
    dose = drug.formulary.dose if drug.formulary else None
    for dosage in changed.get("dosageInstruction", []):
        dosage.pop("text", None)
        if dose and dose.usual:
            dosage["doseAndRate"] = [{"doseQuantity": {"value": dose.usual, "unit": dose.unit,
                                                       "system": "http://unitsofmeasure.org", "code": dose.unit}}]
            dosage["timing"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
        else:
            dosage.pop("doseAndRate", None)
    return {"label": f"改用 {drug.label}", "actions": [
        {"type": "update", "description": f"Order {drug.key} instead of {order.label}", "resource": changed}]}


def lower_dose(order, factor: float, limit: float, unit: str) -> dict | None:
    """Scale every dose of the order so the day's total is `limit` `unit`."""
    if not order.ref or factor >= 1:
        return None
    changed = copy.deepcopy(order.request)
    for dosage in changed.get("dosageInstruction", []):
        dosage.pop("text", None)
        for dose_and_rate in dosage.get("doseAndRate", []):
            quantity = dose_and_rate.get("doseQuantity")
            if quantity and quantity.get("value") is not None:
                quantity["value"] = round(quantity["value"] * factor, 3)
        cap = (dosage.get("maxDosePerPeriod") or {}).get("numerator")
        if cap and cap.get("value") is not None:
            cap["value"] = round(cap["value"] * factor, 3)
    return {"label": f"减量至每日不超过 {limit:g} {unit}", "actions": [
        {"type": "update", "description": f"Lower the dose of {order.label} to at most {limit:g} {unit} a day",
         "resource": changed}]}


def present(*suggestions) -> list[dict]:
    return [s for s in suggestions if s]
