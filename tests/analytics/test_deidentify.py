"""The research form of resources: what it removes, what it keeps, and that records still link up."""
from __future__ import annotations

from datetime import date, datetime

from ihs.analytics.deidentify import MAX_SHIFT_DAYS, Deidentifier, shift_date

KEY = b"a key of the installation, kept secret"
PATIENT = {
    "resourceType": "Patient", "id": "p1",
    "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">王秀英</div>"},
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "330523199312059749"}],
    "name": [{"family": "王", "given": ["秀英"]}], "telecom": [{"system": "phone", "value": "13800000000"}],
    "gender": "female", "birthDate": "1993-12-05",
    "address": [{"line": ["解放路158号"], "city": "湖州市", "district": "安吉县", "state": "浙江省", "postalCode": "313300"}],
    "extension": [{"url": "http://example.org/nickname", "valueString": "小英"}],
    "contact": [{"name": {"family": "李"}, "telecom": [{"system": "phone", "value": "13900000000"}],
                 "gender": "male"}],
}


def _observation(id_: str, effective: str) -> dict:
    return {"resourceType": "Observation", "id": id_, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}],
                     "text": "血压（王秀英自测）"},
            "subject": {"reference": "Patient/p1", "display": "王秀英"}, "effectiveDateTime": effective,
            "valueQuantity": {"value": 150, "unit": "mmHg"}, "note": [{"text": "患者诉头晕"}]}


def test_a_patient_keeps_no_direct_identifier_and_coarse_quasi_identifiers():
    out = Deidentifier(KEY, today=date(2026, 1, 1)).resource(PATIENT)
    assert set(out) == {"resourceType", "id", "gender", "birthDate", "address", "contact"}
    assert out["id"] != "p1" and len(out["id"]) == 32
    assert out["address"] == [{"city": "湖州市", "district": "安吉县", "state": "浙江省"}]
    assert out["birthDate"] in {"1993", "1994"}  # the year of the shifted date
    assert out["contact"] == [{"gender": "male"}]


def test_references_and_date_shifts_agree_across_a_patients_resources():
    deidentifier = Deidentifier(KEY)
    patient = deidentifier.resource(PATIENT)
    first = deidentifier.resource(_observation("o1", "2024-03-01T08:00:00+08:00"))
    second = deidentifier.resource(_observation("o2", "2024-03-11T08:00:00+08:00"))
    assert first["subject"] == {"reference": f"Patient/{patient['id']}"}
    shifted = [datetime.fromisoformat(o["effectiveDateTime"]) for o in (first, second)]
    assert (shifted[1] - shifted[0]).days == 10  # intervals survive
    assert shifted[0] != datetime.fromisoformat("2024-03-01T08:00:00+08:00")
    assert "note" not in first and "text" not in first["code"]
    assert first["code"]["coding"][0]["display"] == "Systolic blood pressure"
    assert first["valueQuantity"]["unit"] == "mmHg"


def test_pseudonyms_depend_on_the_key():
    assert Deidentifier(KEY).pseudonym("Patient", "p1") == Deidentifier(KEY).pseudonym("Patient", "p1")
    assert Deidentifier(KEY).pseudonym("Patient", "p1") != Deidentifier(b"another key").pseudonym("Patient", "p1")
    shifts = {Deidentifier(KEY).shift_days(f"p{i}") for i in range(200)}
    assert len(shifts) > 50 and all(-MAX_SHIFT_DAYS <= s <= MAX_SHIFT_DAYS for s in shifts)


def test_ages_over_89_are_top_coded():
    old = dict(PATIENT, birthDate="1920-05-01")
    assert Deidentifier(KEY, today=date(2026, 1, 1)).resource(old)["birthDate"] == "1936"


def test_shift_keeps_each_precision():
    assert shift_date("2024-02-28", 2) == "2024-03-01"
    assert shift_date("2024-02", 30) == "2024-03"
    assert shift_date("2024", 300) == "2024"
    assert shift_date("2024-12-31T23:30:00.123Z", 1) == "2025-01-01T23:30:00.123Z"
