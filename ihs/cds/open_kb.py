"""The knowledge base shipped with IHS, read from the JSON files in ihs/cds/knowledge/.

drugs.json is the dictionary (codes and names), classes.json the classes rules are written in,
interactions.json the interaction rules, allergy.json the allergy classes and their cross-reactions,
formulary.json the region's formulary. Each fact carries its source into the cards it raises.
"""
from __future__ import annotations

from pathlib import Path

import orjson

from ihs.cds.kb import (ATC, RXNORM, SEVERITY_ORDER, AllergyMatch, Dose, Drug, FormularyEntry, Interaction,
                        KnowledgeBase, RenalLimit, Source)

KNOWLEDGE = Path(__file__).parent / "knowledge"


def _load(directory: Path, name: str) -> dict:
    return orjson.loads((directory / name).read_bytes())


def _formulary_entry(row: dict) -> FormularyEntry:
    dose = row.get("dose")
    return FormularyEntry(
        group=row["group"],
        dose=Dose(dose["unit"], dose.get("usual"), dose.get("max"), Source(dose["source"])) if dose else None,
        renal=tuple(sorted((RenalLimit(r["egfr_below"], r.get("max"), bool(r.get("avoid")), Source(r["source"]))
                            for r in row.get("renal", [])), key=lambda r: r.egfr_below)),
        indications=tuple(row.get("indications", [])),
        reimbursement=row.get("reimbursement"),
        otc=bool(row.get("otc")))


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


class OpenKnowledgeBase(KnowledgeBase):
    """The open knowledge: ONC DDI lists, allergy classes and the region's formulary."""

    name = "IHS open prescription-safety knowledge"

    def __init__(self, directory: Path = KNOWLEDGE):
        formulary = {row["inn"]: _formulary_entry(row) for row in _load(directory, "formulary.json")["drugs"]}
        self.drugs: dict[str, Drug] = {}
        self._by_code: dict[tuple[str, str], Drug] = {}
        self._by_name: dict[str, Drug] = {}
        self._class_cache: dict[tuple, frozenset[str]] = {}
        for row in _load(directory, "drugs.json")["drugs"]:
            drug = Drug(row["inn"], row.get("zh"), row.get("rxcui"), tuple(row.get("atc", [])), formulary.get(row["inn"]))
            self.drugs[drug.key] = drug
            if drug.rxcui:
                self._by_code[(RXNORM, drug.rxcui)] = drug
            for code in drug.atc:
                self._by_code[(ATC, code)] = drug
            for name in [drug.key, drug.zh, *row.get("aliases", [])]:
                if name:
                    self._by_name[_norm(name)] = drug
        missing = set(formulary) - set(self.drugs)
        if missing:
            raise ValueError(f"formulary.json names drugs missing from drugs.json: {sorted(missing)}")
        self.classes = _load(directory, "classes.json")["classes"]
        interactions = _load(directory, "interactions.json")
        self.lists = interactions["lists"]
        self.rules = interactions["rules"]
        for rule in self.rules:
            for side in (rule["a"], rule["b"]):
                if side not in self.classes:
                    raise ValueError(f"interaction rule {rule['id']} names an unknown class '{side}'")
        allergy = _load(directory, "allergy.json")
        self.allergy_classes = allergy["classes"]
        self.cross_reactions = {(x["allergy"], x["drug"]): x for x in allergy["cross_reactions"]}
        self._allergy_names = {_norm(n): key for key, c in self.allergy_classes.items() for n in c.get("names", [])}

    # -- drugs ---------------------------------------------------------------------------------

    def resolve(self, concept: dict | None) -> Drug | None:
        if not concept:
            return None
        for coding in concept.get("coding", []):
            drug = self._by_code.get((coding.get("system"), coding.get("code")))
            if drug:
                return drug
        for coding in concept.get("coding", []):
            if coding.get("system") == ATC and coding.get("code"):
                return Drug(coding["code"], atc=(coding["code"],))  # known only by its ATC code
        for name in [concept.get("text"), *(c.get("display") for c in concept.get("coding", []))]:
            if name and _norm(name) in self._by_name:
                return self._by_name[_norm(name)]
        return None

    def drug(self, key: str) -> Drug | None:
        return self.drugs.get(key)

    def classes_of(self, drug: Drug) -> frozenset[str]:
        """The interaction classes `drug` belongs to."""
        key = (drug.key, drug.atc)
        if key not in self._class_cache:
            self._class_cache[key] = frozenset(name for name in self.classes if self.in_class(drug.key, drug.atc, name))
        return self._class_cache[key]

    def in_class(self, key: str, atc: tuple[str, ...], name: str, seen: frozenset = frozenset()) -> bool:
        spec = self.classes[name]
        if key in spec.get("members", ()) or any(code.startswith(p) for code in atc for p in spec.get("atc", ())):
            return True
        return any(inner not in seen and self.in_class(key, atc, inner, seen | {name})
                   for inner in spec.get("includes", ()))

    # -- interactions --------------------------------------------------------------------------

    def interaction(self, a: Drug, b: Drug) -> Interaction | None:
        if a.key == b.key:
            return None
        ca, cb = self.classes_of(a), self.classes_of(b)
        found = None
        for rule in self.rules:
            if rule["a"] in ca and rule["b"] in cb:
                hit = self._interaction(rule, ordered=b)
            elif rule["a"] in cb and rule["b"] in ca:
                hit = self._interaction(rule, ordered=b, swapped=True)
            else:
                continue
            if found is None or SEVERITY_ORDER[hit.severity] > SEVERITY_ORDER[found.severity]:
                found = hit
        return found

    def _interaction(self, rule: dict, *, ordered: Drug, swapped: bool = False) -> Interaction:
        listed = self.lists[rule["list"]]
        source = Source(rule.get("source") or listed["label"], listed.get("url"))
        alternatives = ()
        for class_name, replacements in rule.get("alternatives", {}).items():
            if class_name in self.classes_of(ordered):
                alternatives = tuple(replacements)
        return Interaction(rule["id"], rule["severity"], rule["effect"], rule["effect_zh"],
                           (self.classes[rule["a"]]["label"], self.classes[rule["b"]]["label"]), source,
                           alternatives, rule.get("alternatives_source"))

    # -- allergies -----------------------------------------------------------------------------

    def allergy_classes_of(self, atc: tuple[str, ...]) -> set[str]:
        return {name for name, spec in self.allergy_classes.items()
                if any(code.startswith(prefix) for code in atc for prefix in spec["atc"])}

    def allergy(self, allergen: dict | None, drug: Drug) -> AllergyMatch | None:
        if not allergen:
            return None
        drug_classes = self.allergy_classes_of(drug.atc)
        named = self.resolve(allergen)
        if named is not None and named.key == drug.key:
            return AllergyMatch("critical", "same-drug", None, f"The patient is allergic to {drug.key}.",
                                Source("AllergyIntolerance on record"))
        allergy_classes = self.allergy_classes_of(named.atc) if named else self._allergy_class(allergen)
        for name in sorted(allergy_classes & drug_classes):
            spec = self.allergy_classes[name]
            return AllergyMatch("critical", "same-class", spec["label"],
                                f"{drug.key} is one of the {spec['label']}, to which the patient is allergic.",
                                Source(spec["source"]))
        for allergy_class in sorted(allergy_classes):
            for drug_class in sorted(drug_classes):
                cross = self.cross_reactions.get((allergy_class, drug_class))
                if cross:
                    return AllergyMatch(cross["severity"], "cross-reactive", self.allergy_classes[allergy_class]["label"],
                                        cross["detail"], Source(cross["source"]))
        return None

    def _allergy_class(self, allergen: dict) -> set[str]:
        """Allergy classes an allergen names directly (an ATC class code or a class name)."""
        found = set()
        for coding in allergen.get("coding", []):
            if coding.get("system") == ATC:
                found |= {name for name, spec in self.allergy_classes.items() if coding.get("code") in spec["atc"]}
        for name in [allergen.get("text"), *(c.get("display") for c in allergen.get("coding", []))]:
            if name and _norm(name) in self._allergy_names:
                found.add(self._allergy_names[_norm(name)])
        return found

