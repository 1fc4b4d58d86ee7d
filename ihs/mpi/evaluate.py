"""Pairwise accuracy of a linkage against the truth: precision, recall and F1."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class Accuracy:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        real = self.true_positives + self.false_negatives
        return self.true_positives / real if real else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def true_pairs(entity_of: dict[str, str]) -> set[frozenset]:
    """Every pair of records of the same person."""
    members = defaultdict(list)
    for record, entity in entity_of.items():
        members[entity].append(record)
    return {frozenset(pair) for group in members.values() for pair in combinations(sorted(group), 2)}


def accuracy(predicted: set[frozenset], truth: set[frozenset]) -> Accuracy:
    """How the predicted pairs of records compare with the true ones."""
    hits = len(predicted & truth)
    return Accuracy(hits, len(predicted) - hits, len(truth) - hits)
