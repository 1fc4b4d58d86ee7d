"""Field comparisons: how alike two people's features are, as discrete agreement levels.

`compare(a, b)` answers one level per field of `FIELDS` (None when either side lacks the field,
which then counts neither for nor against a match). Higher levels mean closer agreement; the
model learns how much each level of each field weighs.
"""
from __future__ import annotations

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler, Levenshtein

from ihs.mpi.features import Person
from ihs.mpi.names import NameForm

# (field, number of levels, what the levels mean from 0 up)
FIELDS: list[tuple[str, int, str]] = [
    ("family", 5, "different, similar (Jaro-Winkler >= 0.8 or same sound code), close (>= 0.92 or same merged "
                  "pinyin sounds), same pinyin (homophone or other script), identical"),
    ("given", 5, "as family"),
    ("birth", 5, "different, same year and month or month and day, day/month or digits transposed, "
                 "one digit off, identical"),
    ("sex", 2, "different, same"),
    ("national_id", 3, "different, one edit apart, identical"),
    ("phone", 3, "different, one edit apart, identical"),
    ("address", 5, "different, the street or locality alike, the house number and street alike, the house "
                    "number, street and locality alike, identical lines"),
    ("place", 4, "of city (or district), postal code and state: none agree, one, two, all given agree"),
]
FIELD_NAMES = [name for name, _, _ in FIELDS]
LEVELS = [levels for _, levels, _ in FIELDS]

Levels = tuple


# the sound levels of pairs of name keys already compared: names repeat (a few hundred family names,
# common given names), so most of a new record's comparisons were made before
_SOUND_LEVELS: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
_MAX_SOUND_LEVELS = 100_000  # about 15 MB


def _form_level(a: NameForm, b: NameForm) -> int:
    if a.hanzi is not None and a.hanzi == b.hanzi:
        return 4
    if a.hanzi is None and b.hanzi is None and a.key == b.key:
        return 4
    if not a.key_set.isdisjoint(b.key_set):
        return 3
    pair = (a.keys, b.keys)
    level = _SOUND_LEVELS.get(pair)
    if level is None:
        if len(_SOUND_LEVELS) >= _MAX_SOUND_LEVELS:
            _SOUND_LEVELS.clear()
        level = _SOUND_LEVELS[pair] = _sound_level(a, b)
    return level


def _sound_level(a: NameForm, b: NameForm) -> int:
    """2 when two keys are close (Jaro-Winkler >= 0.92 or the same merged sounds), 1 when alike, else 0;
    a form's sounds follow from its keys."""
    best = 0
    for x, x_merged, x_sound in a.sounds:
        for y, y_merged, y_sound in b.sounds:
            similarity = JaroWinkler.similarity(x, y)
            if similarity >= 0.92 or x_merged == y_merged:
                return 2
            if similarity >= 0.8 or x_sound == y_sound:
                best = 1
    return best


def name_level(a: tuple[NameForm, ...], b: tuple[NameForm, ...]) -> int | None:
    """The closest agreement between any form of one name part and any of the other's."""
    if not a or not b:
        return None
    best = 0
    for x in a:
        for y in b:
            level = _form_level(x, y)
            if level > best:
                best = level
                if best == 4:
                    return best
    return best


def birth_level(a: str | None, b: str | None) -> int | None:
    if not a or not b:
        return None
    if a == b:
        return 4
    if Levenshtein.distance(a, b) == 1:
        return 3
    if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        return 2
    if DamerauLevenshtein.distance(a, b) == 1:
        return 2
    if a[:6] == b[:6] or a[4:] == b[4:]:
        return 1
    return 0


def _edit_level(a: str | None, b: str | None) -> int | None:
    if not a or not b:
        return None
    if a == b:
        return 2
    return 1 if DamerauLevenshtein.distance(a, b) == 1 else 0


def _phone_level(a: tuple[str, ...], b: tuple[str, ...]) -> int | None:
    if not a or not b:
        return None
    return max(_edit_level(x, y) for x in a for y in b)


def _house_level(a: str | None, b: str | None) -> int | None:
    if not a or not b:
        return None
    if a == b:
        return 2
    return 1 if not set(a.split()).isdisjoint(b.split()) else 0


def _alike(a: str | None, b: str | None, threshold: float = 0.88) -> bool:
    return bool(a and b and (a == b or JaroWinkler.similarity(a, b) >= threshold))


def address_level(a: Person, b: Person) -> int | None:
    """How alike the address lines are: house numbers, street, locality (in either order)."""
    if not (a.house or a.street) or not (b.house or b.street):
        return None
    if (a.house, a.street, a.locality) == (b.house, b.street, b.locality):
        return 4
    street = _alike(a.street, b.street) or _alike(a.street, b.locality) or _alike(a.locality, b.street)
    locality = _alike(a.locality, b.locality)
    house = _house_level(a.house, b.house)
    if house == 2 and street and (locality or not (a.locality and b.locality)):
        return 3
    if house and street:
        return 2
    return 1 if street or locality else 0


def place_level(a: Person, b: Person) -> int | None:
    """How many of city, postal code and state agree, among those both records give (3: all of them)."""
    given = agree = 0
    for x, y, alike in ((a.city, b.city, _alike), (a.postcode, b.postcode, _one_edit), (a.state, b.state, _equal)):
        if x and y:
            given += 1
            agree += alike(x, y)
    if not given:
        return None
    return 3 if agree == given else min(agree, 2)


def _one_edit(a: str, b: str) -> bool:
    return a == b or DamerauLevenshtein.distance(a, b) <= 1


def _equal(a: str, b: str) -> bool:
    return a == b


def _same(a, b) -> int | None:
    if a is None or b is None:
        return None
    return int(a == b)


def compare(a: Person, b: Person) -> Levels:
    """The agreement level of every field of `FIELDS`, with family and given names in the best order."""
    family, given = name_level(a.family, b.family), name_level(a.given, b.given)
    if a.family and a.given and b.family and b.given:
        # a name written in the other order (Xiaoming Wang) agrees crosswise
        swapped_family, swapped_given = name_level(a.family, b.given), name_level(a.given, b.family)
        if swapped_family + swapped_given > family + given:
            family, given = swapped_family, swapped_given
    return (
        family,
        given,
        birth_level(a.birth, b.birth),
        _same(a.sex, b.sex),
        _edit_level(a.national_id, b.national_id),
        _phone_level(a.phones, b.phones),
        address_level(a, b),
        place_level(a, b),
    )
