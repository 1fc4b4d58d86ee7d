"""Syndrome definitions (syndromes.toml) and the classification of a visit into syndromes."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

ICD10 = "http://hl7.org/fhir/sid/icd-10"


@dataclass(frozen=True)
class Syndrome:
    code: str
    name: str
    chinese: str
    icd10: tuple[str, ...]
    phrases: tuple[str, ...]
    combinations: tuple[tuple[tuple[str, ...], ...], ...]

    def matches_code(self, code: str) -> bool:
        """True when the ICD-10 code falls in one of the syndrome's categories (J11.1 under J11)."""
        code = code.strip().upper()
        return any(code.startswith(prefix) for prefix in self.icd10)

    def matches_text(self, text: str) -> bool:
        text = text.lower()
        if any(phrase.lower() in text for phrase in self.phrases):
            return True
        return any(all(any(p.lower() in text for p in group) for group in combination)
                   for combination in self.combinations)


@lru_cache(maxsize=1)
def syndromes() -> dict[str, Syndrome]:
    """The syndromes by code, in the order of the definitions file."""
    raw = tomllib.loads(resources.files("ihs.surveillance").joinpath("syndromes.toml").read_text("utf-8"))
    return {code: Syndrome(code, entry["name"], entry["chinese"], tuple(entry.get("icd10", ())),
                           tuple(entry.get("phrases", ())),
                           tuple(tuple(tuple(group) for group in combination)
                                 for combination in entry.get("combinations", ())))
            for code, entry in raw.items()}


def syndrome(code: str) -> Syndrome:
    """One syndrome by its code; KeyError names the known ones."""
    known = syndromes()
    if code not in known:
        raise KeyError(f"unknown syndrome {code!r}; known: {', '.join(known)}")
    return known[code]


def classify(icd10_codes: list[str], complaints: list[str]) -> list[str]:
    """The syndromes of a visit with these diagnosis codes and chief-complaint texts."""
    return [code for code, s in syndromes().items()
            if any(s.matches_code(c) for c in icd10_codes) or any(s.matches_text(t) for t in complaints)]
