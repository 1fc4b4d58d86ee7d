"""The knowledge-base interface the prescription checks ask, and the one in use.

The checks never read the data files themselves: they ask a `KnowledgeBase` which drug an order
names, whether two drugs interact, whether an allergy covers a drug. `OpenKnowledgeBase`
(ihs/cds/open_kb.py) answers from the facts shipped in ihs/cds/knowledge/; a site with a licensed
commercial database implements this interface and names its factory in
IHS_CDS_KNOWLEDGE_BASE ("package.module:factory").
"""
from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import lru_cache

SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"


@dataclass(frozen=True)
class Source:
    """Where a fact comes from: a label to show and, when there is one, a URL."""

    label: str
    url: str | None = None


@dataclass(frozen=True)
class Dose:
    """Adult daily dose: usual and maximum, in `unit` (UCUM: mg, ug, [IU])."""

    unit: str
    usual: float | None
    max: float | None
    source: Source


@dataclass(frozen=True)
class RenalLimit:
    """Below an eGFR of `egfr_below` mL/min/1.73 m2: avoid the drug, or give at most `max` a day."""

    egfr_below: float
    max: float | None
    avoid: bool
    source: Source


@dataclass(frozen=True)
class FormularyEntry:
    group: str  # duplicate-therapy group
    dose: Dose | None = None
    renal: tuple[RenalLimit, ...] = ()
    indications: tuple[str, ...] = ()  # ICD-10 code prefixes
    reimbursement: str | None = None  # 甲 | 乙
    otc: bool = False


@dataclass(frozen=True)
class Drug:
    """An ingredient as the knowledge base knows it; `key` is its INN (or the only code it is known by)."""

    key: str
    zh: str | None = None
    rxcui: str | None = None
    atc: tuple[str, ...] = ()
    formulary: FormularyEntry | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.zh}（{self.key}）" if self.zh else self.key

    @property
    def antibacterial(self) -> bool:
        """Antibacterial for systemic use (ATC J01), the drugs antibiotic stewardship counts."""
        return any(code.startswith("J01") for code in self.atc)


@dataclass(frozen=True)
class Interaction:
    rule: str
    severity: str  # info | warning | critical
    effect: str
    effect_zh: str
    classes: tuple[str, str]  # the two class labels, in the order of the rule
    source: Source
    alternatives: tuple[str, ...] = ()  # INNs that may replace the drug that was just ordered
    alternatives_source: str | None = None


@dataclass(frozen=True)
class AllergyMatch:
    severity: str  # warning | critical
    reason: str  # same-drug | same-class | cross-reactive
    allergy_class: str | None
    detail: str
    source: Source


class KnowledgeBase(ABC):
    """What the prescription checks need to know about drugs."""

    name: str = "knowledge base"

    @abstractmethod
    def resolve(self, concept: dict | None) -> Drug | None:
        """The drug a CodeableConcept names (RxNorm, ATC or name), or None if unknown."""

    @abstractmethod
    def drug(self, key: str) -> Drug | None:
        """A drug by its INN."""

    @abstractmethod
    def interaction(self, a: Drug, b: Drug) -> Interaction | None:
        """The most severe interaction between two drugs, or None."""

    @abstractmethod
    def allergy(self, allergen: dict | None, drug: Drug) -> AllergyMatch | None:
        """Whether an allergy to `allergen` (AllergyIntolerance.code) concerns `drug`."""


@lru_cache(maxsize=1)
def knowledge_base() -> KnowledgeBase:
    """The knowledge base in use: IHS_CDS_KNOWLEDGE_BASE's factory, or the shipped open one."""
    target = os.environ.get("IHS_CDS_KNOWLEDGE_BASE")
    if not target:
        from ihs.cds.open_kb import OpenKnowledgeBase
        return OpenKnowledgeBase()
    module, _, factory = target.partition(":")
    return getattr(importlib.import_module(module), factory or "knowledge_base")()
