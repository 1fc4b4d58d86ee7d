"""Blocking: which records are worth comparing with a new one, found without scanning them all.

Each record files under a few keys (rules below); two records are candidates when they share a
key. The rules are chosen so that a true match with errors in several fields still shares at
least one key: identifiers, phones, birth date, the sounds of the names with the birth year or
the month and day, and the address. Keys whose block grows past `max_block` (a very common
name in one year) stop yielding candidates; the other rules still find those records.
"""
from __future__ import annotations

from collections import defaultdict

from ihs.mpi.features import Person
from ihs.mpi.names import phonetic

MAX_BLOCK = 50


def blocking_keys(p: Person) -> set[tuple]:
    """The keys a record files under."""
    keys: set[tuple] = set()
    if p.national_id:
        keys.add(("id", p.national_id))
        keys.add(("id-body", p.national_id[:14]))  # area and birth date: typos in the sequence or check
    for phone in p.phones:
        keys.add(("phone", phone))
    families = {phonetic(k) for f in p.family for k in f.keys[:2]}
    givens = {phonetic(k) for g in p.given for k in g.keys[:2]}
    names = families | givens
    if p.birth:
        keys.add(("birth", p.birth))
        for sound in names:
            keys.add(("name-year", sound, p.birth[:4]))
            keys.add(("name-day", sound, p.birth[4:]))
    for family in families:
        for given in givens:
            keys.add(("names", *sorted((family, given))))
    place = p.postcode or p.city
    if place:
        for sound in names:
            keys.add(("name-place", sound, place))
    if p.house and p.city:
        keys.add(("house-city", p.house.split()[0], p.city))
    if p.street:
        street = phonetic(p.street.split()[0]) if p.street.isascii() else p.street
        if p.house:
            keys.add(("house", p.house.split()[0], street))
        if place:
            keys.add(("street", place, street))
    return keys


class BlockingIndex:
    """Blocking keys to record ids, kept in memory and updated record by record."""

    def __init__(self, max_block: int = MAX_BLOCK):
        self.max_block = max_block
        self._blocks: dict[tuple, set[str]] = defaultdict(set)
        self._keys: dict[str, set[tuple]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, p: Person) -> None:
        self.remove(p.id)
        keys = blocking_keys(p)
        self._keys[p.id] = keys
        for key in keys:
            self._blocks[key].add(p.id)

    def remove(self, record_id: str) -> None:
        for key in self._keys.pop(record_id, ()):
            block = self._blocks.get(key)
            if block is not None:
                block.discard(record_id)
                if not block:
                    del self._blocks[key]

    def candidates(self, p: Person) -> set[str]:
        """Ids of records sharing a key with `p` (p itself excluded), small blocks only."""
        found: set[str] = set()
        for key in blocking_keys(p):
            block = self._blocks.get(key)
            if block and len(block) <= self.max_block:
                found |= block
        found.discard(p.id)
        return found

    def pairs(self):
        """Every candidate pair (a < b) once, for training and bulk matching."""
        seen: set[tuple[str, str]] = set()
        for block in self._blocks.values():
            if len(block) < 2 or len(block) > self.max_block:
                continue
            members = sorted(block)
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    if (a, b) not in seen:
                        seen.add((a, b))
        return seen
