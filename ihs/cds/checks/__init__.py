"""The prescription checks, one concern a module; each is `check(review) -> list[Finding]`.

interactions (drug-drug interactions, duplicate therapy), allergy (drug allergy with class
cross-reactivity), dosing (maximum and renal limits), indication (药不对症), prescription
(completeness, prescriber licence, supply length, validity for dispensing).
"""
