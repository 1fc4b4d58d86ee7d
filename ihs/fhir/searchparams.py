"""The SearchParameter registry: which search parameters each resource type has.

Built from SearchParameter resources -- the 1,375 official R4 definitions shipped in
ihs/fhir/definitions, plus any a user adds. A definition whose expression covers several types
("AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | ...") is split so each
type keeps only its own part; definitions based on Resource or DomainResource (_tag, _profile, ...)
apply to every (domain) resource type, with the expression rooted at that type.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Iterable

from ihs.fhir.errors import InvalidResource, Issue
from ihs.fhir.fhirpath_compile import DOMAIN_RESOURCE_TYPES, RESOURCE_TYPES, compile_fhirpath, union_parts

PARAM_TYPES = ("number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special")
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# the R4 modifiers each parameter type accepts, used when a definition does not list its own
DEFAULT_MODIFIERS = {
    "string": ("missing", "exact", "contains"),
    "token": ("missing", "text", "not", "above", "below", "in", "not-in", "of-type"),
    "reference": ("missing", "type", "identifier", "above", "below"),
    "uri": ("missing", "above", "below"),
    "date": ("missing",), "number": ("missing",), "quantity": ("missing",),
    "composite": ("missing",), "special": ("missing",),
}
# answered from the resource table's own columns, never from index rows
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})
_ROOT = re.compile(r"\s*\(*\s*([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class SearchParam:
    """One search parameter as it applies to one resource type."""

    code: str
    type: str
    resource_type: str
    base: tuple[str, ...]
    expression: str | None  # only this type's part of the definition's expression
    url: str
    targets: tuple[str, ...] = ()
    components: tuple[tuple[str, str], ...] = ()  # composite: (definition url, relative expression)
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    multiple_or: bool = True
    multiple_and: bool = True

    @property
    def indexed(self) -> bool:
        """Whether index rows are extracted for it (not _id/_lastUpdated, not special, has an expression)."""
        return bool(self.expression) and self.type != "special" and self.code not in COLUMN_PARAMS


def split_expression(expression: str | None, resource_type: str) -> str | None:
    """The part of a (multi-type) expression that applies to `resource_type`, or None if none does.

    Parts rooted at Resource or DomainResource are rewritten to start at `resource_type`.
    """
    if not expression:
        return None
    mine = []
    for part in union_parts(expression):
        root = _ROOT.match(part)
        name = root.group(1) if root else None
        if name == resource_type:
            mine.append(part)
        elif name in ("Resource", "DomainResource"):
            mine.append(part[:root.start(1)] + resource_type + part[root.end(1):])
        elif name not in RESOURCE_TYPES:
            mine.append(part)  # a relative expression applies to whatever it is evaluated on
    return " | ".join(mine) or None


def _applies_to(base: Iterable[str]) -> list[str]:
    types: list[str] = []
    for name in base:
        if name == "Resource":
            types.extend(sorted(RESOURCE_TYPES))
        elif name == "DomainResource":
            types.extend(sorted(DOMAIN_RESOURCE_TYPES))
        else:
            types.append(name)
    return list(dict.fromkeys(types))


class Registry:
    """Search parameters by resource type and code, built from SearchParameter resources."""

    def __init__(self, definitions: Iterable[dict] = ()):
        self._params: dict[str, dict[str, SearchParam]] = {}
        self._by_url: dict[str, SearchParam] = {}
        self._derived: dict[Any, Any] = {}
        for definition in definitions:
            self._register(definition)

    def params_for(self, resource_type: str) -> dict[str, SearchParam]:
        """Every search parameter of `resource_type` by code (including _id and _lastUpdated)."""
        return dict(self._params.get(resource_type, {}))

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        """The parameter `code` of `resource_type`, or None if the type has no such parameter."""
        return self._params.get(resource_type, {}).get(code)

    def by_url(self, url: str) -> SearchParam | None:
        """A parameter defined by the SearchParameter with this canonical url (composites name components so)."""
        return self._by_url.get(url.split("|", 1)[0])

    def resource_types(self) -> list[str]:
        """The resource types that have at least one search parameter."""
        return sorted(self._params)

    def add(self, search_parameter: dict) -> SearchParam:
        """Register a user-defined SearchParameter resource; returns the parameter for its first base type.

        A parameter with the same code on the same type is replaced. Raises InvalidResource naming
        the element when the definition cannot be used for search.
        """
        _check(search_parameter)
        unknown = [Issue(f"component definition '{c['definition']}' is not a known SearchParameter",
                         f"SearchParameter.component[{i}].definition")
                   for i, c in enumerate(search_parameter.get("component", ())) if not self.by_url(c["definition"])]
        if unknown:
            raise InvalidResource(unknown)
        params = self._register(search_parameter)
        self._by_url[params[0].url] = params[0]
        self._derived.clear()
        return params[0]

    def derived(self, key: Any, build: Callable[[], Any]) -> Any:
        """A value computed from the registry's contents (compiled extractors), rebuilt after `add`."""
        try:
            return self._derived[key]
        except KeyError:
            value = self._derived[key] = build()
            return value

    def _register(self, definition: dict) -> list[SearchParam]:
        param_type = definition["type"]
        params = []
        for resource_type in _applies_to(definition["base"]):
            param = SearchParam(
                code=definition["code"],
                type=param_type,
                resource_type=resource_type,
                base=tuple(definition["base"]),
                expression=split_expression(definition.get("expression"), resource_type),
                url=definition.get("url") or f"urn:ihs:searchparameter:{resource_type}-{definition['code']}",
                targets=tuple(definition.get("target", ())),
                components=tuple((c["definition"], c["expression"]) for c in definition.get("component", ())),
                modifiers=tuple(definition.get("modifier") or DEFAULT_MODIFIERS.get(param_type, ())),
                comparators=tuple(definition.get("comparator") or
                                  (PREFIXES if param_type in ("number", "date", "quantity") else ())),
                multiple_or=definition.get("multipleOr", True),
                multiple_and=definition.get("multipleAnd", True),
            )
            self._params.setdefault(resource_type, {})[param.code] = param
            self._by_url.setdefault(param.url, param)
            params.append(param)
        return params


def _check(definition: dict) -> None:
    """Issues that make a SearchParameter unusable, raised as one InvalidResource."""
    issues = []
    if definition.get("resourceType") != "SearchParameter":
        issues.append(Issue("a SearchParameter resource is required", "SearchParameter"))
    if not isinstance(definition.get("code"), str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-.]*",
                                                                        definition.get("code", "")):
        issues.append(Issue("code must be a search parameter name such as 'birth-place'", "SearchParameter.code"))
    if definition.get("type") not in PARAM_TYPES:
        issues.append(Issue(f"type must be one of {', '.join(PARAM_TYPES)}", "SearchParameter.type"))
    base = definition.get("base")
    if not isinstance(base, list) or not base:
        issues.append(Issue("base must list at least one resource type", "SearchParameter.base"))
    else:
        for i, name in enumerate(base):
            if name not in RESOURCE_TYPES and name not in ("Resource", "DomainResource"):
                issues.append(Issue(f"'{name}' is not an R4 resource type", f"SearchParameter.base[{i}]"))
    if definition.get("type") == "composite" and not definition.get("component"):
        issues.append(Issue("a composite parameter needs components", "SearchParameter.component"))
    for i, component in enumerate(definition.get("component") or ()):
        for field in ("definition", "expression"):
            if not isinstance(component.get(field), str):
                issues.append(Issue(f"each component needs its {field}", f"SearchParameter.component[{i}].{field}"))
    expression = definition.get("expression")
    if definition.get("type") not in ("special", None) and not expression:
        issues.append(Issue("expression is required to index this parameter", "SearchParameter.expression"))
    if expression and not issues:
        issues.extend(_expression_issues(definition))
    if issues:
        raise InvalidResource(issues)


def _expression_issues(definition: dict) -> list[Issue]:
    """Evaluate the expression on an empty resource of each base type: fhirpathpy reports unknown functions."""
    for resource_type in _applies_to(definition["base"])[:1]:
        expression = split_expression(definition["expression"], resource_type)
        if not expression:
            return [Issue(f"expression has no part for {resource_type}", "SearchParameter.expression")]
        try:
            compile_fhirpath(expression, resource_type)({"resourceType": resource_type}, {})
        except Exception as exc:  # fhirpathpy raises bare Exceptions for unknown functions and arity
            return [Issue(f"expression cannot be evaluated: {exc}", "SearchParameter.expression")]
    return []


# An AuditEvent is written for every access, so it is indexed only by what people look AuditEvents
# up by: whose record, who, what, when, which interaction and its outcome (docs/security.md). The
# other official parameters (address, agent-name, entity-role, _content, ...) are not offered for it.
AUDIT_EVENT_PARAMS = frozenset({"_id", "_lastUpdated", "_profile", "_security", "_source", "_tag", "action", "agent",
                                "altid", "date", "entity", "outcome", "patient", "subtype", "type"})


# Full-text rows cost about a quarter of a millisecond per resource to write, so _text and _content
# are offered for the types people read as text (notes, reports, problems, plans), not for every
# Observation or Claim. IHS_FULLTEXT_TYPES: a comma-separated list, or * for every type.
FULLTEXT_TYPES = "IHS_FULLTEXT_TYPES"
DEFAULT_FULLTEXT_TYPES = ("AllergyIntolerance,CarePlan,ClinicalImpression,Communication,Composition,Condition,"
                          "DiagnosticReport,DocumentReference,FamilyMemberHistory,QuestionnaireResponse")


def fulltext_types(known: Iterable[str]) -> set[str]:
    """The resource types indexed for _text and _content (IHS_FULLTEXT_TYPES, else the default list)."""
    listed = os.environ.get(FULLTEXT_TYPES, DEFAULT_FULLTEXT_TYPES).strip()
    if listed == "*":
        return set(known)
    named = {t.strip() for t in listed.split(",") if t.strip()}
    unknown = named - set(known)
    if unknown:
        raise ValueError(f"{FULLTEXT_TYPES} names unknown resource types: {', '.join(sorted(unknown))}")
    return named


@cache
def registry() -> Registry:
    """The registry of the official R4 SearchParameters shipped with IHS (built once, shared)."""
    from ihs.fhir.definitions import search_parameters
    built = Registry(search_parameters())
    audit = built._params["AuditEvent"]
    for code in set(audit) - AUDIT_EVENT_PARAMS:
        del audit[code]
    texts = fulltext_types(built._params) - {"AuditEvent"}
    for res_type, params in built._params.items():
        if res_type not in texts:
            params.pop("_text", None)
            params.pop("_content", None)
    return built
