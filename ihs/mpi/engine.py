"""The matching engine: records, their blocking index and the model, all in memory.

`Matcher.match(person)` finds candidates through the blocking index, compares them field by
field and scores them with the Fellegi-Sunter model, so answering never scans every record.
`Matcher.train()` re-estimates the model from the records it holds.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ihs.mpi.blocking import BlockingIndex
from ihs.mpi.compare import Levels, compare
from ihs.mpi.features import Person
from ihs.mpi.model import Model, estimate_u, expectation_maximisation

# grades by match probability (http://hl7.org/fhir/StructureDefinition/match-grade)
CERTAIN, PROBABLE, POSSIBLE = 0.99, 0.5, 0.05


def grade(probability: float) -> str:
    """certain (auto-link), probable (a steward reviews), possible, certainly-not."""
    if probability >= CERTAIN:
        return "certain"
    if probability >= PROBABLE:
        return "probable"
    if probability >= POSSIBLE:
        return "possible"
    return "certainly-not"


@dataclass(frozen=True)
class Candidate:
    """One scored candidate record for a person."""

    id: str
    weight: float
    probability: float
    levels: Levels

    @property
    def grade(self) -> str:
        return grade(self.probability)


class Matcher:
    """Records by id, their blocking index and the model that scores pairs of them."""

    def __init__(self, model: Model | None = None):
        self.model = model or Model()
        self.persons: dict[str, Person] = {}
        self.index = BlockingIndex()

    def __len__(self) -> int:
        return len(self.persons)

    def add(self, person: Person) -> None:
        self.persons[person.id] = person
        self.index.add(person)

    def remove(self, record_id: str) -> None:
        self.persons.pop(record_id, None)
        self.index.remove(record_id)

    def score(self, a: Person, b: Person) -> Candidate:
        levels = compare(a, b)
        weight, probability = self.model.score(levels)
        return Candidate(b.id, weight, probability, levels)

    def match(self, person: Person, *, minimum: float = 0.0) -> list[Candidate]:
        """Candidates scored against `person`, best first, with probability >= `minimum`."""
        scored = [self.score(person, self.persons[i]) for i in self.index.candidates(person)]
        return sorted((c for c in scored if c.probability >= minimum), key=lambda c: (-c.weight, c.id))

    def candidate_pairs(self, *, max_records: int | None = None, seed: int = 7) -> set[tuple[str, str]]:
        """Candidate pairs (a < b): all of them, or those of a random sample of `max_records` records."""
        if max_records is None or len(self.persons) <= max_records:
            return self.index.pairs()
        pairs = set()
        for record_id in random.Random(seed).sample(sorted(self.persons), max_records):
            for other in self.index.candidates(self.persons[record_id]):
                pairs.add((record_id, other) if record_id < other else (other, record_id))
        return pairs

    def train(self, *, samples: int = 40_000, max_records: int | None = 20_000) -> dict[tuple[str, str], Levels]:
        """Re-estimate the model (u from random pairs, then EM over candidate pairs of at most
        `max_records` records); answers the comparison of every candidate pair it trained on."""
        levels = {(a, b): compare(self.persons[a], self.persons[b])
                  for a, b in self.candidate_pairs(max_records=max_records)}
        u = estimate_u(list(self.persons.values()), compare, samples=samples)
        self.model = expectation_maximisation(Model(u=u), Counter(levels.values()))
        return levels
