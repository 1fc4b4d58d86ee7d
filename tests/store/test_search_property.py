"""Property: over the demo region, every generated search answers what the brute-force reference answers.

Queries are drawn (hypothesis) from values that occur in the data, so most of them match something:
each parameter type with its prefixes and modifiers, OR by comma, AND by repetition, :missing,
chains and _has. The SQL engine (ihs.store.search) and tests/search_reference.py share only the
SearchParameter definitions. Each query also runs under a forced plan (every test probed per
candidate, or the first one driving), so each SQL shape the planner can choose is checked.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ihs.api import bundle
from ihs.demo.generator import generate_region
from ihs.fhir.searchparams import registry
from ihs.store.search import search, where
from tests.search_reference import ReferenceSearch, _all_strings, _component_facts, _tokens, _words

EXAMPLES = 200
TYPES = ["Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "Practitioner",
         "PractitionerRole", "Organization", "Location", "Appointment"]
DATE_PREFIXES = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]
NUMBER_PREFIXES = DATE_PREFIXES + ["ap"]
HIERARCHIES = ("Location", "Organization")  # types whose partOf makes :above and :below apply


@pytest.fixture
def demo(store):
    for item in generate_region(seed=11, residents=25):
        bundle.process(store, item)
    with store.session() as uow:
        everything = search(uow, None, [("_count", "1000")], lenient=False)
        offset, resources = 0, []
        while True:
            page = search(uow, None, [("_count", "1000"), ("_offset", str(offset))])
            resources += [m.resource() for m in page.matches]
            if not page.has_next:
                break
            offset += len(page.matches)
    assert everything.matches
    return store, ReferenceSearch(resources)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$").replace("|", "\\|")


def _instant(micros: float, precision: str) -> str:
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    return moment.strftime({"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d",
                            "second": "%Y-%m-%dT%H:%M:%SZ"}[precision])


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class Draws:
    """Turns values found in the data into query parameters."""

    def __init__(self, ref: ReferenceSearch, data):
        self.ref, self.data = ref, data

    def pick(self, items, label):
        return self.data.draw(st.sampled_from(items), label=label)

    def params_with_values(self, res_type: str) -> list[tuple]:
        out = []
        for param in self.ref.registry.params_for(res_type).values():
            if not param.indexed or param.type in ("special",):
                continue
            resources = [r for r in self.ref.resources if r["resourceType"] == res_type
                         and self.ref._facts_of(r, param, None)]
            if resources:
                out.append((param, resources))
        return out

    def criterion(self, res_type: str, depth: int = 0) -> tuple[str, str] | None:
        kinds = ["value", "value", "value", "missing", "chain", "has", "content", "filter"]
        kind = self.pick(kinds + (["near"] if res_type == "Location" else []) if depth == 0 else ["value"], "kind")
        if kind == "chain":
            return self.chain(res_type)
        if kind in ("content", "filter", "near"):
            return getattr(self, kind)(res_type)
        if kind == "has":
            return self.has(res_type)
        candidates = self.params_with_values(res_type)
        if not candidates:
            return None
        param, resources = self.pick(candidates, "param")
        if kind == "missing":
            return f"{param.code}:missing", self.pick(["true", "false"], "missing")
        resource = self.pick(resources, "resource")
        facts = self.ref._facts_of(resource, param, None)
        first = self.value(param, self.pick(facts, "fact"))
        if first is None:
            return None
        modifier, value = first
        if self.data.draw(st.booleans(), label="or") and modifier not in (":not",):
            other = self.value(param, self.pick(facts, "fact2"), modifier)
            if other is not None:
                value = f"{value},{other[1]}"
        return f"{param.code}{modifier}", value

    def value(self, param, fact, modifier: str | None = None) -> tuple[str, str] | None:
        kind = param.type
        if kind == "string":
            mode = modifier if modifier is not None else self.pick(["", "", ":exact", ":contains"], "string")
            if mode == ":exact":
                return mode, _escape(fact)
            if not fact.strip():
                return None
            start = 0 if mode == "" else self.data.draw(st.integers(0, len(fact) - 1), label="start")
            end = self.data.draw(st.integers(start + 1, len(fact)), label="end")
            return mode, _escape(fact[start:end])
        if kind == "token":
            system, code, text, extra = fact
            if extra == "of-type":
                return None
            forms = ([""] if code else []) + ([":text"] if text and text.strip() else [])
            forms += ([":not"] if code else [])
            if not forms:
                return None
            mode = modifier if modifier is not None else self.pick(forms, "token")
            if mode == ":text":
                if not text or not text.strip():
                    return None
                return mode, _escape(self.pick(text.split(), "word")[:3])
            if not code:
                return None
            shape = self.pick(["code", "system|code", "system|"], "shape")
            if shape == "code":
                return mode, _escape(code)
            if shape == "system|code":
                return mode, f"{_escape(system or '')}|{_escape(code)}"
            return (mode, f"{_escape(system)}|") if system else (mode, _escape(code))
        if kind == "date":
            low, high = fact
            if low == float("-inf"):
                return None
            precision = self.pick(["year", "month", "day", "second"], "precision")
            return "", self.pick(DATE_PREFIXES, "prefix") + _instant(low, precision)
        if kind == "number":
            return "", self.pick(NUMBER_PREFIXES, "prefix") + _number(fact[0])
        if kind == "quantity":
            number, system, code = fact
            prefix = self.pick(NUMBER_PREFIXES, "prefix")
            shape = self.pick(["number", "full", "code"], "shape")
            if shape == "full" and system and code:
                return "", f"{prefix}{_number(number)}|{_escape(system)}|{_escape(code)}"
            if shape == "code" and code:
                return "", f"{prefix}{_number(number)}||{_escape(code)}"
            return "", f"{prefix}{_number(number)}"
        if kind == "reference":
            ref_type, ref_id, url = fact
            if ref_type is None:
                return "", _escape(url) if "://" in url else None
            if modifier in (":below", ":above"):  # a second value ORed under the first one's modifier
                return (modifier, f"{ref_type}/{ref_id}") if ref_type in HIERARCHIES else None
            if modifier:
                return (modifier, ref_id) if modifier == f":{ref_type}" else None
            shapes = ["typed", "id", "modifier"] + (["below", "above"] if ref_type in HIERARCHIES else [])
            shape = self.pick(shapes, "reference")
            if shape in ("below", "above"):
                return f":{shape}", f"{ref_type}/{ref_id}"
            if shape == "typed":
                return "", f"{ref_type}/{ref_id}"
            if shape == "modifier":
                return f":{ref_type}", ref_id
            return "", ref_id
        if kind == "composite":
            return self.composite(param, fact)
        if kind == "uri":
            mode = self.pick(["", ":below"], "uri")
            if mode == ":below":
                return mode, _escape(fact[:self.data.draw(st.integers(1, len(fact)), label="cut")])
            return mode, _escape(fact)
        return None

    def composite(self, param, fact) -> tuple[str, str] | None:
        (_, a_values), (b_type, b_values) = fact
        codes = [t[1] for v, k in a_values for t in _tokens(v, k) if t[1] and t[3] == ""]
        if not codes or not b_values:
            return None
        b_param = self.ref.registry.by_url(param.components[1][0])
        b_facts = [f for v, k in b_values for f in _component_facts(b_type, v, k)]
        if not b_facts:
            return None
        second = self.value(b_param, self.pick(b_facts, "second"), "" if b_type == "string" else None)
        if second is None or second[0]:
            return None
        return "", f"{_escape(self.pick(codes, 'first'))}${second[1]}"

    def content(self, res_type: str) -> tuple[str, str] | None:
        """_content with a word of one resource, or two words in a row as a phrase."""
        if registry().get(res_type, "_content") is None:  # a type without full-text rows
            return None
        resources = [r for r in self.ref.resources if r["resourceType"] == res_type]
        if not resources:
            return None
        words = _words(" ".join(_all_strings(self.pick(resources, "resource"), [])))
        if not words:
            return None
        at = self.data.draw(st.integers(0, len(words) - 1), label="word")
        if self.data.draw(st.booleans(), label="phrase") and at + 1 < len(words):
            return "_content", f'"{words[at]} {words[at + 1]}"'
        return "_content", words[at]

    def near(self, res_type: str) -> tuple[str, str] | None:
        placed = [r["position"] for r in self.ref.resources if r["resourceType"] == "Location" and "position" in r]
        if not placed:
            return None
        at = self.pick(placed, "position")
        distance, units = self.pick([("1", "km"), ("5", ""), ("20", "km"), ("300", "km"), ("2500", "m")], "distance")
        return "near", f"{at['latitude']}|{at['longitude']}|{distance}" + (f"|{units}" if units else "")

    def filter(self, res_type: str) -> tuple[str, str] | None:
        """_filter joining one or two ordinary criteria (written as comparisons) by and, or, not."""
        parts = []
        for _ in range(2):
            criterion = self.criterion(res_type, depth=1)
            comparison = _comparison(self.ref, res_type, *criterion) if criterion else None
            if comparison is None:
                return None
            parts.append(comparison)
        joiner = self.pick(["and", "or", "not"], "logic")
        return "_filter", f"not ({parts[0]})" if joiner == "not" else f"{parts[0]} {joiner} {parts[1]}"

    def chain(self, res_type: str) -> tuple[str, str] | None:
        links = []
        for param in self.ref.registry.params_for(res_type).values():
            if param.type != "reference":
                continue
            for r in self.ref.resources:
                if r["resourceType"] != res_type:
                    continue
                for ref_type, ref_id, _ in self.ref._facts_of(r, param, None):
                    target = self.ref.by_key.get((ref_type, ref_id))
                    if target is not None:
                        links.append((param.code, ref_type))
        if not links:
            return None
        code, target_type = self.pick(sorted(set(links)), "link")
        inner = self.criterion(target_type, depth=1)
        if inner is None or inner[0].startswith("_has"):
            return None
        return f"{code}:{target_type}.{inner[0]}", inner[1]

    def has(self, res_type: str) -> tuple[str, str] | None:
        sources = set()
        for r in self.ref.resources:
            for param in self.ref.registry.params_for(r["resourceType"]).values():
                if param.type == "reference" and param.code not in ("_profile",):
                    if any(f[0] == res_type for f in self.ref._facts_of(r, param, None)):
                        sources.add((r["resourceType"], param.code))
        if not sources:
            return None
        source, code = self.pick(sorted(sources), "source")
        inner = self.criterion(source, depth=1)
        if inner is None:
            return None
        return f"_has:{source}:{code}:{inner[0]}", inner[1]


def _comparison(ref: ReferenceSearch, res_type: str, name: str, value: str) -> str | None:
    """`name=value` as a _filter comparison, for the plain forms that have one."""
    if ":" in name or "." in name or "," in value.replace("\\,", "") or "\\" in value:
        return None
    param = ref.registry.get(res_type, name)
    if param.type in ("date", "number", "quantity") and value[:2] in DATE_PREFIXES + ["ap"]:
        if " " in value:
            return None
        rest = value[2:]  # brackets group in _filter, so a value with them (mm[Hg]) is written as a string
        return f"{name} {value[:2]} {json.dumps(rest) if any(c in rest for c in '[]()') else rest}"
    if param.type == "string":
        return f"{name} sw {json.dumps(value)}"
    if param.type in ("token", "reference") and " " not in value and '"' not in value:
        return f"{name} eq {json.dumps(value) if any(c in value for c in '[]()') else value}"
    return None


def _sql_ids(store, res_type: str, query: list[tuple[str, str]], plan: str) -> set[str]:
    """The matches, with the planner choosing drivers normally, never ("probe"), or always when it can."""
    limits = {"normal": (where.SMALL, where.DRIVER_ROWS), "probe": (0, 0), "drive": (10**9, 10**9)}[plan]
    saved = where.SMALL, where.DRIVER_ROWS
    where.SMALL, where.DRIVER_ROWS = limits
    try:
        with store.session() as uow:
            answer = search(uow, res_type, query + [("_count", "1000")])
    finally:
        where.SMALL, where.DRIVER_ROWS = saved
    assert not answer.has_next
    return {m.id for m in answer.matches}


def test_sql_search_equals_the_reference_evaluator(demo):
    store, ref = demo

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        draws = Draws(ref, data)
        res_type = data.draw(st.sampled_from(TYPES), label="type")
        query = []
        for _ in range(data.draw(st.integers(1, 2), label="criteria")):
            criterion = draws.criterion(res_type)
            if criterion is not None:
                query.append(criterion)
        if not query:
            return
        plan = data.draw(st.sampled_from(["normal", "probe", "drive"]), label="plan")
        assert _sql_ids(store, res_type, query, plan) == ref.search(res_type, query), query

    check()
