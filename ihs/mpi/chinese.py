"""A generated Chinese test set for the master patient index, with a documented error model.

People are drawn with the demo region's generators (ihs/demo: names in hanzi with their pinyin,
sex, birth date, a GB 11643 resident ID with a valid check digit, a mobile number, a home address
in Huzhou). Households make hard non-matches: a quarter of the people share a family name, home
and phone with the previous person, and one in thirty of those is a twin (same birth date too).

Each person is registered at 1 to 3 of eight institutions (40% one, 35% two, 25% three), and each
registration is a Patient of its own with these errors, drawn independently per record:

- name script: hanzi and pinyin 50%, hanzi only 30%, pinyin only 20%;
- homophone: one hanzi of the given name (8%) or the family name (4%) replaced by another of
  the same pinyin (明/铭, 王/汪);
- pinyin typo: one letter inserted, dropped, replaced or transposed (5% of pinyin names);
- swapped order: pinyin family and given names exchanged (5% of pinyin names);
- birth date: day and month transposed (3%, when the day is at most 12), one digit off (3%),
  missing (4%);
- resident ID: missing (15%), one digit mistyped, so its check digit fails (3%);
- phone: missing (20%), another number (10%), one digit mistyped (3%);
- address: missing (10%), moved to another address (10%), the flat details left out (10%);
- sex: missing (2%).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from ihs.demo.identity import draw_sequence, mobile_phone, resident_id
from ihs.demo.names import GIVEN, SURNAMES, ChineseName, draw_name
from ihs.demo.places import DISTRICTS, draw_birthplace, draw_home
from ihs.mpi.idnumber import RESIDENT_ID_SYSTEM

INSTITUTIONS = [f"Organization/{name}" for name in (
    "wuxing-community-centre", "nanxun-community-centre", "deqing-community-centre", "changxing-county-hospital",
    "anji-county-hospital", "huzhou-central-hospital", "zhejiang-provincial-hospital", "huzhou-tcm-hospital")]
RECORDS_PER_PERSON = ([1, 2, 3], [40, 35, 25])
# characters of the same toneless pinyin that people confuse in names, beyond the demo's name pools
EXTRA_HOMOPHONES = "汪wang 章zhang 黎li 阳yang 留liu 吕lv 芬fen 铭ming 洁jie 莉li 艳yan 颖ying 馨xin 宇yu 语yu " \
                   "梓zi 轩xuan 辰chen 昊hao 皓hao 怡yi 一yi 婧jing 娴xian 斌bin 彬bin 俊jun 骏jun 峰feng 锋feng"


def _homophones() -> dict[str, list[str]]:
    """Characters by pinyin, from the demo's name pools and the extra table."""
    by_sound: dict[str, set[str]] = {}
    pools = [(c, p.lower()) for c, p, _ in SURNAMES if len(c) == 1]
    pools += [pair for pool in GIVEN.values() for pair in pool]
    pools += [(item[0], item[1:]) for item in EXTRA_HOMOPHONES.split()]
    for char, sound in pools:
        by_sound.setdefault(sound, set()).add(char)
    return {sound: sorted(chars) for sound, chars in by_sound.items() if len(chars) > 1}


HOMOPHONES = _homophones()
_SOUND_OF = {char: sound for sound, chars in HOMOPHONES.items() for char in chars}


@dataclass
class Person:
    """The true facts about one person of the test set."""

    name: ChineseName
    gender: str
    birth: date
    id_number: str
    phone: str
    address: dict


def _draw_person(rng: random.Random, household: Person | None) -> Person:
    gender = "male" if rng.random() < 0.51 else "female"
    twin = household is not None and rng.random() < 1 / 30
    if twin:
        birth = household.birth
    else:
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(90 * 365))
    name = draw_name(rng, gender, birth.year)
    if household is not None:
        name = ChineseName(household.name.family, name.given, household.name.family_pinyin, name.given_pinyin)
        phone, address = household.phone, household.address
    else:
        phone = mobile_phone(rng)
        _, address = draw_home(rng, rng.choice(DISTRICTS))
    district = next(d for d in DISTRICTS if d.name == address["district"])
    number = resident_id(draw_birthplace(rng, district).code, birth, draw_sequence(rng, gender))
    return Person(name, gender, birth, number, phone, address)


_FAMILY_CHARS = {c for c, _, _ in SURNAMES} | set("汪章黎阳留吕")


def _homophone(rng: random.Random, text: str, *, family: bool = False) -> str:
    positions = [i for i, c in enumerate(text) if c in _SOUND_OF]
    if not positions:
        return text
    i = rng.choice(positions)
    others = [c for c in HOMOPHONES[_SOUND_OF[text[i]]] if c != text[i] and (not family or c in _FAMILY_CHARS)]
    if not others:
        return text
    return text[:i] + rng.choice(others) + text[i + 1:]


def _typo(rng: random.Random, text: str, alphabet: str) -> str:
    if len(text) < 2:
        return text
    i = rng.randrange(len(text) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + rng.choice(alphabet) + text[i:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + rng.choice([c for c in alphabet if c != text[i]]) + text[i + 1:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def _digit_typo(rng: random.Random, digits: str, lo: int = 0) -> str:
    i = rng.randrange(lo, len(digits))
    return digits[:i] + rng.choice([d for d in "0123456789" if d != digits[i]]) + digits[i + 1:]


def _names(rng: random.Random, name: ChineseName) -> list[dict]:
    family, given = name.family, name.given
    if rng.random() < 0.04:
        family = _homophone(rng, family, family=True)
    if rng.random() < 0.08:
        given = _homophone(rng, given)
    family_pinyin, given_pinyin = name.family_pinyin, name.given_pinyin
    if rng.random() < 0.05:
        letters = "abcdefghijklmnopqrstuvwxyz"
        if rng.random() < 0.5:
            family_pinyin = _typo(rng, family_pinyin.lower(), letters).capitalize()
        else:
            given_pinyin = _typo(rng, given_pinyin.lower(), letters).capitalize()
    if rng.random() < 0.05:
        family_pinyin, given_pinyin = given_pinyin, family_pinyin
    hanzi = {"use": "official", "text": family + given, "family": family, "given": [given]}
    latin = {"use": "official", "text": f"{family_pinyin} {given_pinyin}", "family": family_pinyin,
             "given": [given_pinyin]}
    script = rng.random()
    return [hanzi, latin] if script < 0.5 else [hanzi] if script < 0.8 else [latin]


def _birth(rng: random.Random, birth: date) -> str | None:
    roll = rng.random()
    if roll < 0.03 and birth.day <= 12 and birth.day != birth.month:
        return date(birth.year, birth.day, birth.month).isoformat()
    if roll < 0.06:
        for _ in range(20):
            text = _digit_typo(rng, birth.strftime("%Y%m%d"), 2)
            try:
                return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
            except ValueError:
                continue
    if roll < 0.10:
        return None
    return birth.isoformat()


def _address(rng: random.Random, address: dict) -> dict | None:
    roll = rng.random()
    if roll < 0.10:
        return None
    if roll < 0.20:
        return draw_home(rng, rng.choice(DISTRICTS))[1]
    if roll < 0.30 and "号" in address["line"][1]:
        short = address["line"][1].split("号")[0] + "号"
        return {**address, "line": [address["line"][0], short], "text": None}
    return address


def record(rng: random.Random, person: Person, record_id: str, source: str) -> dict:
    """One registration of a person at an institution, with errors drawn by the model above."""
    patient: dict = {"resourceType": "Patient", "id": record_id, "name": _names(rng, person.name),
                     "managingOrganization": {"reference": source}}
    roll = rng.random()
    if roll >= 0.15:
        number = person.id_number if roll >= 0.18 else _digit_typo(rng, person.id_number[:17]) + person.id_number[17]
        patient["identifier"] = [{"use": "official", "system": RESIDENT_ID_SYSTEM, "value": number}]
    if rng.random() >= 0.02:
        patient["gender"] = person.gender
    birth = _birth(rng, person.birth)
    if birth:
        patient["birthDate"] = birth
    roll = rng.random()
    if roll >= 0.20:
        phone = person.phone if roll >= 0.33 else mobile_phone(rng) if roll < 0.30 else _digit_typo(rng, person.phone, 3)
        patient["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    address = _address(rng, person.address)
    if address:
        patient["address"] = [{k: v for k, v in address.items() if v}]
    return patient


def generate(people: int = 5000, seed: int = 20240501) -> tuple[list[dict], dict[str, int]]:
    """Patients of `people` people and the person each record belongs to."""
    rng = random.Random(seed)
    patients, truth = [], {}
    previous = None
    for n in range(people):
        household = previous if previous is not None and rng.random() < 0.25 else None
        person = _draw_person(rng, household)
        previous = person
        count = rng.choices(*RECORDS_PER_PERSON)[0]
        for k, source in enumerate(rng.sample(INSTITUTIONS, count)):
            record_id = f"cn-{n}-{k}"
            patients.append(record(rng, person, record_id, source))
            truth[record_id] = n
    return patients, truth
