"""FHIRPath search expressions compiled into extractors that return (value, FHIR type) pairs.

`compile_fast` turns the shapes the official SearchParameters use -- dotted paths, unions,
choice elements (`Observation.effective` means effectiveDateTime, effectivePeriod, ...),
`(X as T)`, `.as(T)`, `.ofType(T)`, `.where(resolve() is T)`, `.where(field='literal')`,
`.extension('url')` and `[n]` -- into plain dictionary walks. Element types come from the R4
model that ships with fhirpathpy, so each route through a resource ("branch") has one static
output type. Any other expression goes through `compile_fhirpath`, which evaluates it with
fhirpathpy. Both agree on what they return; the fast path exists only for speed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import fhirpathpy
from fhirpathpy.engine.nodes import FP_Type, ResourceNode
from fhirpathpy.engine.util import get_data
from fhirpathpy.models import models

_MODEL = models["r4"]
_PATH_TYPES: dict[str, str] = _MODEL["path2Type"]
_CHOICES: dict[str, list[str]] = _MODEL["choiceTypePaths"]
_ELSEWHERE: dict[str, str] = _MODEL["pathsDefinedElsewhere"]
_PARENTS: dict[str, str] = _MODEL["type2Parent"]

PRIMITIVES = frozenset({
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id", "instant",
    "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid", "xhtml",
})
RESOURCE_TYPES = frozenset(t for t, parent in _PARENTS.items()
                           if parent in ("Resource", "DomainResource") and t != "DomainResource")
DOMAIN_RESOURCE_TYPES = frozenset(t for t in RESOURCE_TYPES if _PARENTS[t] == "DomainResource")
_ABSTRACT_ROOTS = ("Resource", "DomainResource")
# every path that has children is a BackboneElement (or a data type) we can walk into
_BACKBONES = frozenset(p[:i] for p in _PATH_TYPES for i, ch in enumerate(p) if ch == ".")
_SYSTEM_TYPES = {"System.String": "string", "System.Boolean": "boolean", "System.Integer": "integer",
                 "System.Decimal": "decimal", "System.Date": "date", "System.DateTime": "dateTime",
                 "System.Time": "time"}

# Type/id at the end of a relative or absolute reference, with an optional /_history/version
_REFERENCE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


class Unsupported(Exception):
    """The expression is outside the fast path's shapes; evaluate it with fhirpathpy instead."""


@dataclass(frozen=True)
class Branch:
    """One statically typed route through a resource: `get(focus, root)` returns values all of `type`.

    `key` is the first JSON key the route reads from its focus (None if it reads none): when the
    focus lacks that key the route yields nothing, so callers may skip it.
    """

    type: str
    get: Callable[[Any, dict], list]
    key: str | None = None


def parse_reference(reference: str) -> tuple[str | None, str | None]:
    """(type, id) of a relative or absolute reference ending in Type/id; (None, None) otherwise."""
    match = _REFERENCE.search(reference)
    return (match.group(1), match.group(2)) if match else (None, None)


def reference_type(reference: Any) -> str | None:
    """The resource type a Reference points to: what `resolve() is T` tests, without fetching it."""
    if not isinstance(reference, dict):
        return None
    written = reference.get("reference")
    if isinstance(written, str):
        target_type = parse_reference(written)[0]
        if target_type:
            return target_type
    declared = reference.get("type")
    return declared if isinstance(declared, str) and declared in RESOURCE_TYPES else None


def is_subtype(type_name: str, ancestor: str) -> bool:
    """True when `type_name` is `ancestor` or derives from it (Age is a Quantity, code a string)."""
    while type_name:
        if type_name == ancestor:
            return True
        type_name = _PARENTS.get(type_name)
    return False


def child_elements(context: str, name: str) -> list[tuple[str, str]] | None:
    """(JSON key, type) pairs element `name` has under a type or backbone path; None if unknown.

    A choice element yields one pair per allowed type (value -> valueQuantity: Quantity, ...);
    a backbone element's type is its own path (Observation.component).
    """
    for owner in _owners(context):
        path = f"{owner}.{name}"
        path = _ELSEWHERE.get(path, path)
        if path in _CHOICES:
            return [(name + suffix, _type_from_suffix(suffix)) for suffix in _CHOICES[path]]
        declared = _PATH_TYPES.get(path)
        if declared:
            return [(name, _SYSTEM_TYPES.get(declared, declared))]
        if path in _BACKBONES:
            return [(name, path)]
    return None


def _owners(context: str):
    """The context, then the types it inherits elements from (Element.extension, Resource.meta)."""
    yield context
    if "." in context:
        yield "BackboneElement"
        yield "Element"
        return
    parent = _PARENTS.get(context)
    while parent:
        yield parent
        parent = _PARENTS.get(parent)


def _type_from_suffix(suffix: str) -> str:
    lowered = suffix[0].lower() + suffix[1:]
    return lowered if lowered in PRIMITIVES else suffix


def _type_name(name: str) -> str:
    """A type named in an expression; `DateTime` means dateTime (the R4 composites write it so)."""
    name = name.removeprefix("FHIR.")
    if name in _PARENTS or name in PRIMITIVES or name in _ABSTRACT_ROOTS:
        return name
    return _type_from_suffix(name)


# ---------------------------------------------------------------------------- parsing

def union_parts(expression: str) -> list[str]:
    """The top-level `|` operands of a FHIRPath expression (not those inside parentheses or strings)."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(expression):
        if ch == "'" and (i == 0 or expression[i - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return [part for part in parts if part]


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+)(?![\d.])|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op>[.()\[\]=|]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise Unsupported(f"unexpected {text[pos:]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the subset; each part becomes a list of steps (kind, argument)."""

    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        if self.pos >= len(self.tokens):
            return False
        token_kind, token = self.tokens[self.pos]
        return (value is None or token == value) and (kind is None or token_kind == kind)

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        if not self.peek(value, kind):
            raise Unsupported(f"expected {value or kind} at token {self.pos}")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def union(self) -> list[list[tuple[str, Any]]]:
        parts = [self.part()]
        while self.peek("|", "op"):
            self.take("|")
            parts.append(self.part())
        if self.pos != len(self.tokens):
            raise Unsupported("trailing tokens")
        return parts

    def part(self) -> list[tuple[str, Any]]:
        if self.peek("(", "op"):
            self.take("(")
            steps = self.path()
            self.take("as", "id")
            steps.append(("type", self.take(kind="id")))
            self.take(")")
        else:
            steps = self.path()
        while self.peek(".", "op"):
            self.take(".")
            steps.extend(self.invocation())
        if self.peek("as", "id"):
            self.take("as")
            steps.append(("type", self.take(kind="id")))
        return steps

    def path(self) -> list[tuple[str, Any]]:
        steps = self.member()
        while self.peek(".", "op"):
            self.take(".")
            steps.extend(self.invocation())
        return steps

    def member(self) -> list[tuple[str, Any]]:
        steps = [("name", self.take(kind="id"))]
        if self.peek("[", "op"):
            self.take("[")
            steps.append(("index", int(self.take(kind="num"))))
            self.take("]")
        return steps

    def invocation(self) -> list[tuple[str, Any]]:
        if not (self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1] == ("op", "(")):
            return self.member()
        function = self.take(kind="id")
        self.take("(")
        if function in ("as", "ofType"):
            steps = [("type", self.take(kind="id"))]
        elif function == "extension":
            steps = [("name", "extension"), ("equals", ("url", _literal(self.take(kind="str"))))]
        elif function == "where" and self.peek("resolve", "id"):
            self.take("resolve")
            self.take("(")
            self.take(")")
            self.take("is", "id")
            steps = [("resolves_to", self.take(kind="id"))]
        elif function == "where":
            field = self.take(kind="id")
            self.take("=")
            steps = [("equals", (field, _literal(self.take(kind="str"))))]
        else:
            raise Unsupported(f"function {function}()")
        self.take(")")
        return steps


def _literal(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


# ---------------------------------------------------------------------------- compiling

def compile_fast(expression: str, context: str) -> list[Branch] | None:
    """Branches that evaluate `expression` on a focus of type `context`; None outside the fast path.

    `context` is a resource type (Observation) or a backbone path (Observation.component) for
    expressions relative to an element, such as a composite's components.
    """
    try:
        parts = _Parser(expression).union()
        return [branch for steps in parts for branch in _compile_part(steps, context)]
    except Unsupported:
        return None


def _compile_part(steps: list[tuple[str, Any]], context: str) -> list[Branch]:
    routes: list[tuple[list, str]] = [([], context)]
    for i, (kind, argument) in enumerate(steps):
        if kind == "name" and i == 0 and _names_focus_type(argument, context):
            continue
        if kind == "name" and i == 0 and argument in RESOURCE_TYPES:
            return []  # a part for another resource type
        routes = [route for steps_so_far, type_ in routes
                  for route in _apply(kind, argument, steps_so_far, type_)]
        if kind == "index" and len(routes) > 1:
            raise Unsupported("index over a choice")
    # a route is a list of (step, JSON key it reads or None)
    return [Branch(type_, _getter([step for step, _ in route], type_), route[0][1] if route else None)
            for route, type_ in routes]


def _names_focus_type(name: str, context: str) -> bool:
    return name == context or (name in _ABSTRACT_ROOTS and context in RESOURCE_TYPES)


def _apply(kind: str, argument: Any, steps: list, type_: str) -> list[tuple[list, str]]:
    if type_ in _ABSTRACT_ROOTS:
        raise Unsupported("walking into a resource of unknown type")
    if kind == "name":
        children = child_elements(type_, argument)
        if children is None:
            raise Unsupported(f"unknown element {type_}.{argument}")
        return [(steps + [(_child(key), key)], child_type) for key, child_type in children]
    if kind == "index":
        return [(steps + [(_index(argument), None)], type_)]
    if kind == "type":
        wanted = _type_name(argument)
        return [(steps, type_)] if is_subtype(type_, wanted) else []
    if kind == "resolves_to":
        if type_ != "Reference":
            raise Unsupported("resolve() on a non-Reference")
        return [(steps + [(_resolves_to(argument), None)], type_)]
    if kind == "equals":
        field, literal = argument
        children = child_elements(type_, field)
        if not children or len(children) != 1 or children[0][1] not in PRIMITIVES:
            raise Unsupported(f"where() on {type_}.{field}")
        return [(steps + [(_equals(children[0][0], literal), None)], type_)]
    raise Unsupported(kind)


def _child(key: str):
    def step(nodes: list, root: dict) -> list:
        out = []
        for node in nodes:
            value = node.get(key)
            if value is None:
                continue
            if value.__class__ is list:
                out.extend(value)
            else:
                out.append(value)
        return out
    return step


def _index(position: int):
    def step(nodes: list, root: dict) -> list:
        return nodes[position:position + 1]
    return step


def _resolves_to(resource_type: str):
    def step(nodes: list, root: dict) -> list:
        return [node for node in nodes if reference_type(node) == resource_type]
    return step


def _equals(key: str, literal: str):
    def step(nodes: list, root: dict) -> list:
        out = []
        for node in nodes:
            value = node.get(key)
            if value == literal or value.__class__ is list and value == [literal]:
                out.append(node)
        return out
    return step


def _getter(steps: list, type_: str) -> Callable[[Any, dict], list]:
    # primitive arrays may hold nulls where only an extension is present (given + _given)
    drop_nulls = type_ in PRIMITIVES
    if not steps:
        return lambda focus, root: [focus]
    first, rest = steps[0], steps[1:]

    def get(focus: Any, root: dict) -> list:
        nodes = first([focus], root)
        for step in rest:
            if not nodes:
                return nodes
            nodes = step(nodes, root)
        if drop_nulls and None in nodes:
            return [node for node in nodes if node is not None]
        return nodes
    return get


# ---------------------------------------------------------------------------- fhirpathpy

def oftype_form(expression: str) -> str:
    """`(X as T)` and `X.as(T)` rewritten as `X.ofType(T)`, which also accepts many values.

    FHIRPath's `as` demands a single item, yet search expressions such as
    `(Observation.component.value as Quantity)` meet many; R5 rewrote them with ofType. Type
    names are read as `compile_fast` reads them (`DateTime` is the FHIR dateTime).
    """
    expression = re.sub(r"\.as\(\s*([A-Za-z][\w.]*)\s*\)", r".ofType(\1)", expression)
    paren_as = re.compile(r"\(\s*([^()|]+?)\s+as\s+([A-Za-z][\w.]*)\s*\)")
    while True:
        rewritten = paren_as.sub(r"\1.ofType(\2)", expression)
        if rewritten == expression:
            break
        expression = rewritten
    return re.sub(r"\.ofType\(\s*([A-Za-z][\w.]*)\s*\)", lambda m: f".ofType({_type_name(m.group(1))})", expression)


def _resolve(references: list) -> list:
    """resolve() without a store: a stub of the type the reference names, enough for `is T`."""
    out = []
    for reference in references:
        target_type = reference_type(reference)
        if target_type:
            out.append(ResourceNode.create_node({"resourceType": target_type}))
    return out


_OPTIONS = {"returnRawData": True, "userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}}}


def compile_fhirpath(expression: str, context: str) -> Callable[[Any, dict], list[tuple[Any, str]]]:
    """An extractor evaluating `expression` with fhirpathpy: (focus, root) -> [(value, type)].

    Each `|` operand is evaluated on its own: fhirpathpy's union drops the element types.
    """
    parts = [fhirpathpy.compile(oftype_form(part), model=_MODEL, options=_OPTIONS) for part in union_parts(expression)]
    relative = context not in RESOURCE_TYPES

    def get(focus: Any, root: dict) -> list[tuple[Any, str]]:
        data = ResourceNode.create_node(focus, context) if relative else focus
        out = []
        for evaluate in parts:
            for node in evaluate(data, {"resource": root, "rootResource": root}):
                value = get_data(node)
                if value is not None:
                    out.append((_plain(value), _node_type(node, value)))
        return out
    return get


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, FP_Type):
        return str(value)
    return value


def _node_type(node: Any, value: Any) -> str:
    path = getattr(node, "path", None)
    if path:
        return _SYSTEM_TYPES.get(path, path)
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, (Decimal, float)):
        return "decimal"
    if isinstance(value, dict) and "resourceType" in value:
        return value["resourceType"]
    if isinstance(value, dict):
        return "Element"
    return "string"
