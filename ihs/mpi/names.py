"""Names as matching keys, for hanzi and Latin script alike.

Every name becomes a set of lower-case Latin keys: Latin names by folding accents and dropping
what is not a letter, hanzi by their toneless pinyin (every reading of a polyphonic character,
so 单 gives shan as well as dan and 曾 zeng as well as ceng). A name written 王晓明 at one
institution and Wang Xiaoming at another thus shares the key "wang"; two homophones (王 and 汪)
share it too, while the hanzi themselves tell an exact match from a homophone.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice, product

import jellyfish
from pypinyin import Style, pinyin

_HANZI = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NOT_LETTER = re.compile(r"[^a-z]")
_MAX_READINGS = 8
# sounds that speakers of southern Mandarin and Wu merge, and typists confuse: zh/z, ch/c, sh/s, n/l, -ng/-n
_MERGED_SOUNDS = [("zh", "z"), ("ch", "c"), ("sh", "s"), ("ng", "n"), ("l", "n")]


@dataclass(frozen=True)
class NameForm:
    """One name part (a family name or the given names) as matching keys."""

    hanzi: str | None  # the characters, when written in hanzi
    keys: tuple[str, ...]  # Latin keys, the usual reading first
    # worked out once, since every comparison asks: the keys as a set, and each key with its sound codes
    key_set: frozenset[str] = field(init=False, compare=False, repr=False)
    sounds: tuple[tuple[str, str, str], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "key_set", frozenset(self.keys))
        object.__setattr__(self, "sounds", tuple((k, merged_sound(k), phonetic(k)) for k in self.keys))

    @property
    def key(self) -> str:
        return self.keys[0]


def has_hanzi(text: str) -> bool:
    return bool(_HANZI.search(text))


def latin_key(text: str) -> str:
    """Lower-case letters only, accents folded: "O'Brien" -> "obrien", "Yi'an" -> "yian"."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _NOT_LETTER.sub("", folded)


@lru_cache(maxsize=65536)
def pinyin_keys(text: str) -> tuple[str, ...]:
    """Toneless pinyin of hanzi text, one key per combination of readings (the usual one first)."""
    chars = [c for c in text if _HANZI.match(c)]
    readings = pinyin("".join(chars), style=Style.NORMAL, heteronym=True, errors="ignore")
    options = [[latin_key(r) for r in dict.fromkeys(each)] for each in readings]
    keys = ["".join(combo) for combo in islice(product(*options), _MAX_READINGS)]
    return tuple(dict.fromkeys(k for k in keys if k))


def name_form(text: str) -> NameForm | None:
    """The keys of one name part, or None when it holds no letter or character."""
    text = text.strip()
    if has_hanzi(text):
        hanzi = "".join(_HANZI.findall(text))
        keys = pinyin_keys(hanzi)
        return NameForm(hanzi, keys) if keys else None
    key = latin_key(text)
    return NameForm(None, (key,)) if key else None


@lru_cache(maxsize=65536)
def merged_sound(key: str) -> str:
    """The key with commonly merged pinyin sounds collapsed (zhang -> zan, liu -> niu)."""
    for sound, into in _MERGED_SOUNDS:
        key = key.replace(sound, into)
    return key


@lru_cache(maxsize=65536)
def phonetic(key: str) -> str:
    """A coarse sound code for blocking: Soundex of the merged-sound key."""
    return jellyfish.soundex(merged_sound(key)) if key else ""
