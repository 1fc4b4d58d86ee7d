"""The Fellegi-Sunter model, with households: how much each agreement level weighs.

Two records of a candidate pair are the same person (class m), members of one household who
share family name, home and phone but not birth, given name or ID number (class h), or unrelated
(class u). For each class and field the model holds the chance of each agreement level; a pair's
match probability is the posterior of class m, and its match weight is log2 of the odds. Without
the household class, a pair of twins or a mother and child agreeing on name, address and phone
would outweigh their disagreements, since those fields are far from independent in a household.

`estimate_u` learns u from random pairs (nearly all unrelated) as a start, then
`expectation_maximisation` fits all three classes and their shares to the candidate pairs that
blocking finds.
"""
from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from ihs.mpi.compare import FIELD_NAMES, LEVELS, Levels

_MAX_SCORED = 100_000  # agreement patterns remembered at most (a few thousand occur in practice)
_SMOOTHING = 0.5  # pseudo-counts per level, so a level never seen keeps a finite probability
# fields a household shares: the h class starts like m on these and like u on the others
HOUSEHOLD_FIELDS = {"family", "phone", "address", "place"}

# starting values before any training: (m, u) per field, levels from 0 up (see compare.FIELDS)
DEFAULTS = {
    "family": ([0.03, 0.02, 0.05, 0.1, 0.8], [0.85, 0.08, 0.02, 0.03, 0.02]),
    "given": ([0.03, 0.02, 0.05, 0.1, 0.8], [0.93, 0.05, 0.005, 0.005, 0.01]),
    "birth": ([0.02, 0.01, 0.02, 0.05, 0.9], [0.985, 0.01, 0.001, 0.003, 0.001]),
    "sex": ([0.02, 0.98], [0.5, 0.5]),
    "national_id": ([0.02, 0.03, 0.95], [0.9998, 0.0001, 0.0001]),
    "phone": ([0.2, 0.02, 0.78], [0.998, 0.001, 0.001]),
    "address": ([0.1, 0.05, 0.1, 0.1, 0.65], [0.6, 0.35, 0.04, 0.005, 0.005]),
    "place": ([0.02, 0.03, 0.05, 0.9], [0.3, 0.2, 0.3, 0.2]),
}


def _default(column: int) -> list[list[float]]:
    return [list(DEFAULTS[name][column]) for name in FIELD_NAMES]


def _household_start(m: list[list[float]], u: list[list[float]]) -> list[list[float]]:
    return [list(m[i]) if name in HOUSEHOLD_FIELDS else list(u[i]) for i, name in enumerate(FIELD_NAMES)]


@dataclass
class Model:
    """Per-class, per-field level probabilities and the share of each class among candidate pairs."""

    m: list[list[float]] = field(default_factory=lambda: _default(0))
    u: list[list[float]] = field(default_factory=lambda: _default(1))
    h: list[list[float]] | None = None
    shares: tuple[float, float, float] = (0.01, 0.005, 0.985)  # m, h, u
    trained_on: int = 0  # candidate pairs EM saw; 0 for the untrained defaults
    _logs: tuple = field(default=(), repr=False)
    # (weight, probability) by levels: candidate pairs repeat a few thousand patterns over and over
    _scored: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.h is None:
            self.h = _household_start(self.m, self.u)
        self.refresh()

    def refresh(self) -> None:
        tables = [[[math.log(p) for p in row] for row in probs] for probs in (self.m, self.h, self.u)]
        priors = [math.log(s) for s in self.shares]
        self._logs = (tables, priors)
        self._scored = {}

    def _scores(self, levels: Levels) -> list[float]:
        tables, priors = self._logs
        return [prior + sum(table[i][level] for i, level in enumerate(levels) if level is not None)
                for table, prior in zip(tables, priors)]

    def posteriors(self, levels: Levels) -> tuple[float, float, float]:
        """The chance of each class (m, h, u) for a pair with these agreement levels."""
        scores = self._scores(levels)
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return exps[0] / total, exps[1] / total, exps[2] / total

    def score(self, levels: Levels) -> tuple[float, float]:
        """(match weight, match probability): the weight is log2 of the odds of one person, within +-60."""
        scored = self._scored.get(levels)
        if scored is None:
            if len(self._scored) >= _MAX_SCORED:
                self._scored.clear()
            scored = self._scored[levels] = self._score(levels)
        return scored

    def _score(self, levels: Levels) -> tuple[float, float]:
        match, household, unrelated = self._scores(levels)
        other = max(household, unrelated)
        rest = other + math.log(math.exp(household - other) + math.exp(unrelated - other))
        log_odds = match - rest
        probability = 1 / (1 + math.exp(-log_odds)) if log_odds > -700 else 0.0
        return max(-60.0, min(60.0, log_odds / math.log(2))), probability

    def probability(self, levels: Levels) -> float:
        """The chance a candidate pair with these agreement levels is one person."""
        return self.score(levels)[1]

    def to_json(self) -> dict:
        return {"fields": FIELD_NAMES, "m": self.m, "h": self.h, "u": self.u, "shares": list(self.shares),
                "trained_on": self.trained_on}

    @classmethod
    def from_json(cls, data: dict) -> "Model":
        """A saved model; one saved for other fields than today's is ignored (defaults instead)."""
        if data.get("fields") != FIELD_NAMES:
            return cls()
        return cls(m=data["m"], u=data["u"], h=data["h"], shares=tuple(data["shares"]),
                   trained_on=data.get("trained_on", 0))


def level_frequencies(comparisons) -> list[list[float]]:
    """The share of each level per field among (levels, count) pairs (missing ones left out), smoothed."""
    totals = [[_SMOOTHING] * n for n in LEVELS]
    for levels, count in comparisons:
        for i, level in enumerate(levels):
            if level is not None:
                totals[i][level] += count
    return [[c / sum(row) for c in row] for row in totals]


def estimate_u(persons: list, compare, samples: int = 40_000, seed: int = 7) -> list[list[float]]:
    """u from random pairs of records: almost all of them are pairs of unrelated people."""
    rng = random.Random(seed)
    if len(persons) < 2:
        return _default(1)
    pairs = Counter()
    for _ in range(samples):
        a, b = rng.sample(persons, 2)
        pairs[compare(a, b)] += 1
    return level_frequencies(pairs.items())


def expectation_maximisation(model: Model, patterns: Counter, *, iterations: int = 60,
                             tolerance: float = 1e-7) -> Model:
    """Fit every class's level probabilities and the class shares to the candidate pairs' patterns."""
    items = list(patterns.items())
    total = sum(patterns.values())
    if not total:
        return model
    for _ in range(iterations):
        model.refresh()
        parts = ([], [], [])
        for levels, count in items:
            for part, share in zip(parts, model.posteriors(levels)):
                part.append((levels, count * share))
        shares = tuple(max(sum(c for _, c in part) / total, 1e-9) for part in parts)
        model.m, model.h, model.u = (level_frequencies(part) for part in parts)
        # a household shares contact fields only: on the others its members are as alike as strangers
        model.h = [h if name in HOUSEHOLD_FIELDS else u for name, h, u in zip(FIELD_NAMES, model.h, model.u)]
        moved = max(abs(a - b) for a, b in zip(shares, model.shares))
        model.shares = shares
        if moved < tolerance:
            break
    model.trained_on = total
    model.refresh()
    return model
