"""Resident ID numbers, name keys and field comparisons."""
from __future__ import annotations

from ihs.mpi import idnumber
from ihs.mpi.compare import FIELD_NAMES, birth_level, compare, name_level
from ihs.mpi.features import person
from ihs.mpi.names import name_form, phonetic

VALID_ID = "11010519491231002X"  # the worked example of GB 11643-1999


def test_resident_id_check_digit_accepts_the_standard_example_and_rejects_a_typo():
    assert idnumber.is_valid(VALID_ID)
    assert idnumber.is_valid(VALID_ID.lower())
    assert not idnumber.is_valid("110105194912310021")
    assert not idnumber.is_valid("11010519491231002")
    assert idnumber.birth_date(VALID_ID) == "19491231"


def test_hanzi_and_pinyin_share_a_key_and_polyphonic_surnames_have_every_reading():
    assert name_form("王").key == name_form("Wang").key == "wang"
    assert "shan" in name_form("单").keys and "zeng" in name_form("曾").keys
    assert name_form("Yi'an").key == "yian"
    assert name_form("  ") is None


def test_name_levels_tell_identical_from_homophone_from_typo():
    def level(a, b):
        return name_level((name_form(a),), (name_form(b),))

    assert level("王", "王") == 4
    assert level("王", "汪") == 3  # same pinyin, other character
    assert level("王", "Wang") == 3
    assert level("Zhang", "Zang") == 2  # zh/z merged
    assert level("michaela", "micheala") == 2
    assert level("Chen", "Zhou") == 0
    assert name_level((), (name_form("Chen"),)) is None
    assert phonetic("zhang") == phonetic("zang")


def test_birth_levels():
    assert birth_level("19650113", "19650113") == 4
    assert birth_level("19650113", "19650112") == 3
    assert birth_level("19650312", "19651203") == 2  # day and month transposed
    assert birth_level("19650113", "19651031") == 0
    assert birth_level("19650113", "19850113") == 3
    assert birth_level(None, "19650113") is None


def _patient(**fields):
    base = {"resourceType": "Patient", "id": "x"}
    base.update(fields)
    return base


def test_compare_reads_swapped_names_crosswise_and_skips_missing_fields():
    a = person(_patient(name=[{"family": "Wang", "given": ["Xiaoming"]}], birthDate="1980-05-06", gender="male"))
    b = person(_patient(name=[{"family": "Xiaoming", "given": ["Wang"]}], birthDate="1980-05-06"))
    levels = dict(zip(FIELD_NAMES, compare(a, b)))
    assert levels["family"] == 4 and levels["given"] == 4
    assert levels["sex"] is None and levels["phone"] is None


def test_features_read_resident_id_phone_and_address():
    p = person(_patient(
        identifier=[{"system": idnumber.RESIDENT_ID_SYSTEM, "value": VALID_ID}],
        telecom=[{"system": "phone", "value": "+86 138-0013-8000"}],
        name=[{"text": "欧阳娜娜"}],
        address=[{"line": ["爱山街道", "人民路12号3幢"], "district": "吴兴区", "city": "湖州市", "postalCode": "313000"}]))
    assert p.national_id == VALID_ID and p.national_id_valid
    assert p.phones == ("13800138000",)
    assert p.family[0].hanzi == "欧阳" and p.given[0].hanzi == "娜娜"
    assert p.house == "12 3" and p.postcode == "313000"


class _Forgetful(dict):
    """A memory of sound levels that keeps nothing: every comparison is worked out afresh."""

    def __setitem__(self, key, value):
        pass


def test_remembered_sound_levels_give_the_levels_of_a_fresh_comparison(monkeypatch):
    from ihs.mpi import chinese, compare as comparisons

    people = [person(p) for p in chinese.generate(60, seed=3)[0]]
    remembered = [compare(a, b) for a in people for b in people]
    again = [compare(a, b) for a in people for b in people]  # now from memory
    assert comparisons._SOUND_LEVELS
    monkeypatch.setattr(comparisons, "_SOUND_LEVELS", _Forgetful())
    fresh = [compare(a, b) for a in people for b in people]
    assert remembered == again == fresh
    assert any(levels[0] in (1, 2) for levels in fresh)  # sound-alike family names were among them
