"""Syndrome classification from ICD-10 codes and chief complaints in Chinese and English."""
from __future__ import annotations

from datetime import date

import pytest

from ihs.surveillance.syndromes import classify, syndrome, syndromes
from ihs.surveillance.visits import age_band, district_of, visit_of


@pytest.mark.parametrize("codes,complaints,expected", [
    (["J11.1"], [], {"ili", "respiratory"}),
    (["A09.9"], [], {"gastrointestinal"}),
    (["B08.4"], [], {"rash", "hfmd"}),
    ([], ["发热伴咳嗽3天"], {"ili", "fever", "respiratory"}),
    ([], ["Fever and sore throat since yesterday"], {"ili", "fever", "respiratory"}),
    ([], ["腹泻、呕吐"], {"gastrointestinal"}),
    ([], ["发热"], {"fever"}),
    (["I10"], ["头晕"], set()),
])
def test_visit_syndromes(codes, complaints, expected):
    assert set(classify(codes, complaints)) == expected


def test_definitions_are_data_with_names_in_both_languages():
    assert {"ili", "fever", "respiratory", "gastrointestinal", "rash"} <= set(syndromes())
    assert syndrome("ili").chinese == "流感样病例"
    with pytest.raises(KeyError, match="known"):
        syndrome("nope")


def test_age_band_and_home_district():
    assert age_band("2020-06-01", date(2024, 5, 31)) == "0-4"
    assert age_band("1964", date(2024, 1, 1)) == "60+"
    assert age_band(None, date(2024, 1, 1)) == "unknown"
    patient = {"address": [{"use": "work", "district": "吴兴区"}, {"use": "home", "district": "德清县"}]}
    assert district_of(patient) == "德清县"


def test_cancelled_or_undated_encounters_are_not_visits():
    base = {"resourceType": "Encounter", "id": "e", "status": "finished", "period": {"start": "2024-01-01"}}
    assert visit_of(base, None, []).day == date(2024, 1, 1)
    assert visit_of({**base, "status": "cancelled"}, None, []) is None
    assert visit_of({**base, "period": {}}, None, []) is None
