"""The FHIRPath of SQL-on-FHIR views, compiled into plain Python closures over JSON resources.

`compile_path(text, resource_type, constants)` turns an expression into a `Compiled` whose
`run(collection, env)` maps an input collection (a list of JSON values) to the output collection.
The R4 element model (ihs.fhir.definitions.structures) types every step at compile time, so a
choice element read through `ofType()` is one dictionary lookup (`value.ofType(Quantity)` reads
`valueQuantity`) and dates are compared as dates, not as strings. Steps the model cannot type
(a `Resource` element, a choice without `ofType`) are typed from the values at run time.

The subset is the one the SQL-on-FHIR v2 specification requires (navigation, indexers, literals,
constants, boolean logic, equality, comparison, arithmetic, where/exists/empty/first/join/ofType/
extension/lowBoundary/highBoundary, getResourceKey/getReferenceKey) plus the common string,
collection and conversion functions (ihs/analytics/fhirpath_functions.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Callable

from ihs.analytics import temporal
from ihs.analytics.fhirpath_parser import FhirPathSyntaxError, parse
from ihs.fhir.definitions import structures
from ihs.fhir.errors import FhirError

Run = Callable[[list, "Env"], list]
NUMBER_TYPES = frozenset({"integer", "decimal", "positiveInt", "unsignedInt"})


class FhirPathError(FhirError):
    """An expression that parses but cannot be evaluated as written (400)."""

    def __init__(self, message: str):
        super().__init__(message, 400, code="invalid")


class Env:
    """What an evaluation reads besides its input: the resource, %rowIndex, $index."""

    __slots__ = ("resource", "row_index", "index")

    def __init__(self, resource: dict | None = None, row_index: int = 0):
        self.resource = resource
        self.row_index = row_index
        self.index = 0


@dataclass
class Compiled:
    """A compiled expression: `run(collection, env)`; `type` is the static type of each output item (None:
    unknown or mixed); `choice` is (input run, [(json key, type)]) when the last step named a choice element."""

    run: Run
    type: str | None
    choice: tuple[Run, list[tuple[str, str]]] | None = None


@dataclass(frozen=True)
class Scope:
    """Compile-time context: the view's resource type and its constants (name -> (value, type))."""

    resource_type: str
    constants: dict


def compile_path(text: str, resource_type: str, constants: dict | None = None, *,
                 focus_type: str | None = None) -> Compiled:
    """Compile `text` for a focus of `focus_type` (default: the resource) inside a view of `resource_type`."""
    scope = Scope(resource_type, constants or {})
    return compile_node(parse(text), Compiled(_identity, focus_type or resource_type), scope)


def _identity(collection: list, env: Env) -> list:
    return collection


# ---------------------------------------------------------------------------- the element model

@cache
def _types() -> dict:
    return structures()["types"]


@cache
def resource_types() -> frozenset[str]:
    return frozenset(structures()["resources"])


@cache
def _choice_suffixes() -> frozenset[str]:
    """Type suffixes of choice elements (Quantity, DateTime, ...), for typing values the model cannot."""
    return frozenset(key[len(element["choice"]):] for elements in _types().values()
                     for key, element in elements.items() if "choice" in element)


def element_routes(type_name: str | None, name: str) -> list[tuple[str, str | None]] | None:
    """(JSON key, type) pairs for element `name` of `type_name`: one, several for a choice, None if unknown."""
    elements = _types().get(type_name) if type_name else None
    if elements is None:
        return None
    element = elements.get(name)
    if element is not None and "choice" not in element:
        return [(name, _element_type(element))]
    routes = [(key, _element_type(e)) for key, e in elements.items() if e.get("choice") == name]
    return routes or None


def _element_type(element: dict) -> str | None:
    declared = element["type"]
    return None if declared == "Resource" else declared


def value_type(value: Any) -> str | None:
    """The FHIRPath type of a JSON value seen without its element definition."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return value["resourceType"]
    return None


# ---------------------------------------------------------------------------- navigation

def member_run(source: Run, keys: list[str]) -> Run:
    """The values under `keys` of every object in `source`'s output, arrays flattened."""
    if len(keys) == 1:
        key = keys[0]

        def run(collection, env):
            out = []
            for item in source(collection, env):
                if type(item) is dict:
                    value = item.get(key)
                    if value is not None:
                        if type(value) is list:
                            out.extend(v for v in value if v is not None)
                        else:
                            out.append(value)
            return out
        return run

    def run_many(collection, env):
        out = []
        for item in source(collection, env):
            if type(item) is dict:
                for key in keys:
                    value = item.get(key)
                    if value is not None:
                        if type(value) is list:
                            out.extend(v for v in value if v is not None)
                        else:
                            out.append(value)
        return out
    return run_many


def _dynamic_member(source: Run, name: str) -> Run:
    """Navigation where the model does not know the focus type: the key itself, or a choice key."""
    suffixes = _choice_suffixes()

    def run(collection, env):
        out = []
        for item in source(collection, env):
            if type(item) is not dict:
                continue
            value = item.get(name)
            if value is None:
                for key, candidate in item.items():
                    if key.startswith(name) and key[len(name):] in suffixes:
                        value = candidate
                        break
            if value is not None:
                out.extend(value) if type(value) is list else out.append(value)
        return out
    return run


def compile_member(source: Compiled, name: str) -> Compiled:
    routes = element_routes(source.type, name)
    if routes is None and name[:1].isupper() and name in resource_types():
        # `Patient.name`: a leading type name keeps the resources of that type
        inner = source.run
        return Compiled(lambda c, env: [r for r in inner(c, env) if type(r) is dict and r.get("resourceType") == name],
                        name)
    if routes is None:
        return Compiled(_dynamic_member(source.run, name), None)
    if len(routes) == 1:
        key, type_name = routes[0]
        return Compiled(member_run(source.run, [key]), type_name)
    return Compiled(member_run(source.run, [key for key, _ in routes]), None, (source.run, routes))


# ---------------------------------------------------------------------------- nodes

def compile_node(node: tuple, focus: Compiled, scope: Scope) -> Compiled:
    """Compile `node` applied to the output of `focus`."""
    kind = node[0]
    if kind == "literal":
        value, type_name = node[1], node[2]
        return Compiled(lambda c, env: [value], type_name)
    if kind == "empty":
        return Compiled(lambda c, env: [], None)
    if kind == "this":
        return focus
    if kind == "index":
        return Compiled(lambda c, env: [env.index], "integer")
    if kind == "var":
        return _variable(node[1], scope)
    if kind == "name":
        return compile_member(focus, node[1])
    if kind == "call":
        from ihs.analytics.fhirpath_functions import compile_call
        return compile_call(node[1], node[2], focus, scope)
    if kind == "path":
        return compile_node(node[2], compile_node(node[1], focus, scope), scope)
    if kind == "indexer":
        return _indexer(compile_node(node[1], focus, scope), compile_node(node[2], focus, scope))
    if kind == "unary":
        return _negate(compile_node(node[2], focus, scope)) if node[1] == "-" else compile_node(node[2], focus, scope)
    if kind == "type":
        from ihs.analytics.fhirpath_functions import type_test
        return type_test(node[1], compile_node(node[2], focus, scope), node[3])
    if kind == "binary":
        from ihs.analytics.fhirpath_operators import compile_binary
        return compile_binary(node[1], compile_node(node[2], focus, scope), compile_node(node[3], focus, scope))
    raise FhirPathError(f"unsupported expression {node!r}")


_WELL_KNOWN = {"ucum": "http://unitsofmeasure.org", "sct": "http://snomed.info/sct", "loinc": "http://loinc.org"}


def _variable(name: str, scope: Scope) -> Compiled:
    if name in ("resource", "rootResource", "context"):
        return Compiled(lambda c, env: [env.resource], scope.resource_type)
    if name == "rowIndex":
        return Compiled(lambda c, env: [env.row_index], "integer")
    if name in scope.constants:
        value, type_name = scope.constants[name]
        return Compiled(lambda c, env: [value], type_name)
    if name in _WELL_KNOWN:
        url = _WELL_KNOWN[name]
        return Compiled(lambda c, env: [url], "string")
    raise FhirPathError(f"%{name} is not defined: declare it in the view's constant list")


def _indexer(source: Compiled, index: Compiled) -> Compiled:
    run_source, run_index = source.run, index.run

    def run(collection, env):
        position = run_index(collection, env)
        if not position:
            return []
        if len(position) > 1 or isinstance(position[0], bool) or not isinstance(position[0], int):
            raise FhirPathError("an indexer [n] takes one integer")
        items = run_source(collection, env)
        n = position[0]
        return [items[n]] if 0 <= n < len(items) else []
    return Compiled(run, source.type, None)


def _negate(operand: Compiled) -> Compiled:
    inner = operand.run

    def run(collection, env):
        items = inner(collection, env)
        if not items:
            return []
        if len(items) > 1 or isinstance(items[0], bool) or not isinstance(items[0], (int, float)):
            raise FhirPathError("unary minus takes one number")
        return [-items[0]]
    return Compiled(run, operand.type)


def singleton_boolean(items: list) -> bool | None:
    """FHIRPath's singleton evaluation of a collection as a boolean: None for empty."""
    if not items:
        return None
    if len(items) > 1:
        raise FhirPathError(f"expected a single boolean but found {len(items)} values")
    value = items[0]
    return value if isinstance(value, bool) else True


def temporal_kind(*types: str | None) -> str | None:
    """How to compare two values of these static types: 'time', 'dateTime' or None (as plain values)."""
    found = {t for t in types if t in temporal.TEMPORAL_TYPES}
    if not found:
        return None
    return "time" if found == {"time"} else "dateTime"


__all__ = ["compile_path", "Compiled", "Env", "FhirPathError", "FhirPathSyntaxError", "Scope", "compile_node",
           "element_routes", "value_type", "singleton_boolean", "temporal_kind", "resource_types", "NUMBER_TYPES"]
