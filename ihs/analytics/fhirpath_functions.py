"""FHIRPath functions for views: each compiles its arguments once and returns a `Compiled`."""
from __future__ import annotations

import re
from typing import Callable

from ihs.analytics import temporal
from ihs.analytics.fhirpath import (Compiled, FhirPathError, NUMBER_TYPES, Scope, compile_node, member_run,
                                    singleton_boolean, value_type)
from ihs.analytics.fhirpath_operators import distinct
from ihs.fhir.fhirpath_compile import is_subtype, parse_reference

_SYSTEM = {"String": "string", "Boolean": "boolean", "Integer": "integer", "Decimal": "decimal",
           "Date": "date", "DateTime": "dateTime", "Time": "time"}
_STRING_LIKE = frozenset({"string", "code", "id", "markdown", "uri", "url", "canonical", "oid", "uuid",
                          "base64Binary", "date", "dateTime", "instant", "time", "xhtml"})


def type_name(text: str) -> str:
    """A type named in an expression, without its namespace: FHIR.string -> string, System.Integer -> integer."""
    if text.startswith("System."):
        return _SYSTEM.get(text[7:], text[7:])
    return text.removeprefix("FHIR.")


def _conforms(declared: str | None, wanted: str) -> bool:
    return declared is not None and (declared == wanted or is_subtype(declared, wanted))


def _value_conforms(value, wanted: str) -> bool:
    """Whether a value of unknown element type is a `wanted` (seen from its JSON shape)."""
    seen = value_type(value)
    if seen == "string":
        return wanted in _STRING_LIKE
    if seen == "integer":
        return wanted in NUMBER_TYPES
    if seen == "decimal":
        return wanted == "decimal"
    return _conforms(seen, wanted)


def of_type(focus: Compiled, wanted: str) -> Compiled:
    """The items of `focus` that are of type `wanted`: a choice element becomes the one JSON key."""
    if focus.choice is not None:
        source, routes = focus.choice
        keys = [(key, t) for key, t in routes if _conforms(t, wanted)]
        if not keys:
            return Compiled(lambda c, env: [], wanted)
        return Compiled(member_run(source, [k for k, _ in keys]), keys[0][1] if len(keys) == 1 else wanted)
    if focus.type is not None:
        if _conforms(focus.type, wanted):
            return focus
        return Compiled(lambda c, env: [], wanted)
    inner = focus.run
    return Compiled(lambda c, env: [v for v in inner(c, env) if _value_conforms(v, wanted)], wanted)


def type_test(operator: str, focus: Compiled, name: str) -> Compiled:
    """`x is T` (a boolean) and `x as T` (x when it is a T)."""
    narrowed = of_type(focus, type_name(name))
    if operator == "as":
        return narrowed
    run_focus, run_narrowed = focus.run, narrowed.run

    def run(collection, env):
        items = run_focus(collection, env)
        if not items:
            return []
        if len(items) > 1:
            raise FhirPathError("'is' tests a single value")
        return [bool(run_narrowed(collection, env))]
    return Compiled(run, "boolean")


# ---------------------------------------------------------------------------- helpers

def _per_item(focus: Compiled, argument: Compiled, combine: Callable) -> Callable:
    """A run that evaluates `argument` with each item of the focus as $this (and $index)."""
    run_focus, run_argument = focus.run, argument.run

    def run(collection, env):
        items = run_focus(collection, env)
        saved = env.index
        results = []
        for i, item in enumerate(items):
            env.index = i
            results.append((item, run_argument([item], env)))
        env.index = saved
        return combine(results)
    return run


def _single(items: list, function: str):
    if len(items) > 1:
        raise FhirPathError(f"{function}() needs a single input value; found {len(items)}")
    return items[0] if items else None


def _literal_argument(arguments: list, function: str, position: int = 0):
    """An argument that must be a literal or a type name (extension('url'), getReferenceKey(Patient))."""
    node = arguments[position]
    if node[0] == "literal":
        return node[1]
    if node[0] == "name":
        return node[1]
    raise FhirPathError(f"{function}() takes a literal argument")


def _simple(function: Callable[[list], list], result_type: str | None = None):
    """A function of the whole input collection without arguments."""
    def build(focus: Compiled, arguments: list, scope: Scope) -> Compiled:
        inner = focus.run
        return Compiled(lambda c, env: function(inner(c, env)), result_type or focus.type)
    return build


def _string_function(function: Callable, result_type: str = "string", arity: int = 0):
    """A function of one string with `arity` literal-or-expression arguments evaluated on the input."""
    def build(focus: Compiled, arguments: list, scope: Scope) -> Compiled:
        if len(arguments) != arity:
            raise FhirPathError(f"expected {arity} argument(s), found {len(arguments)}")
        compiled = [compile_node(a, focus, scope) for a in arguments]
        inner = focus.run

        def run(collection, env):
            value = _single(inner(collection, env), "string function")
            if value is None:
                return []
            if not isinstance(value, str):
                raise FhirPathError(f"a string function was applied to {type(value).__name__}")
            values = [_single(a.run(collection, env), "argument") for a in compiled]
            if any(v is None for v in values):
                return []
            result = function(value, *values)
            return [] if result is None else [result]
        return Compiled(run, result_type)
    return build


# ---------------------------------------------------------------------------- the functions

def _where(focus, arguments, scope):
    criteria = compile_node(arguments[0], Compiled(lambda c, env: c, focus.type), scope)
    return Compiled(_per_item(focus, criteria, lambda rs: [item for item, r in rs if singleton_boolean(r) is True]),
                    focus.type)


def _select(focus, arguments, scope):
    projection = compile_node(arguments[0], Compiled(lambda c, env: c, focus.type), scope)
    return Compiled(_per_item(focus, projection, lambda rs: [v for _, r in rs for v in r]), projection.type)


def _exists(focus, arguments, scope):
    if arguments:
        focus = _where(focus, arguments, scope)
    inner = focus.run
    return Compiled(lambda c, env: [bool(inner(c, env))], "boolean")


def _all(focus, arguments, scope):
    criteria = compile_node(arguments[0], Compiled(lambda c, env: c, focus.type), scope)
    return Compiled(_per_item(focus, criteria, lambda rs: [all(singleton_boolean(r) is True for _, r in rs)]),
                    "boolean")


def _not(items):
    value = singleton_boolean(items)
    return [] if value is None else [not value]


def _join(focus, arguments, scope):
    separator = compile_node(arguments[0], focus, scope) if arguments else None
    inner = focus.run

    def run(collection, env):
        items = inner(collection, env)
        glue = _single(separator.run(collection, env), "join") if separator else None
        return [(glue or "").join(i if isinstance(i, str) else str(i) for i in items)]
    return Compiled(run, "string")


def _of_type(focus, arguments, scope):
    return of_type(focus, type_name(_literal_argument(arguments, "ofType")))


def _as(focus, arguments, scope):
    return of_type(focus, type_name(_literal_argument(arguments, "as")))


def _is(focus, arguments, scope):
    return type_test("is", focus, _literal_argument(arguments, "is"))


def _extension(focus, arguments, scope):
    url = _literal_argument(arguments, "extension")
    extensions = member_run(focus.run, ["extension"])
    return Compiled(lambda c, env: [e for e in extensions(c, env) if type(e) is dict and e.get("url") == url],
                    "Extension")


def _resource_key(focus, arguments, scope):
    inner = focus.run
    return Compiled(lambda c, env: [r["id"] for r in inner(c, env) if type(r) is dict and "id" in r], "string")


def _reference_key(focus, arguments, scope):
    wanted = type_name(_literal_argument(arguments, "getReferenceKey")) if arguments else None
    inner = focus.run

    def run(collection, env):
        keys = []
        for reference in inner(collection, env):
            written = reference.get("reference") if type(reference) is dict else None
            if not isinstance(written, str):
                continue
            target_type, target_id = parse_reference(written)
            if target_id and (wanted is None or target_type == wanted):
                keys.append(target_id)
        return keys
    return Compiled(run, "string")


def _boundary(high: bool):
    def build(focus, arguments, scope):
        inner, kind = focus.run, focus.type

        def run(collection, env):
            out = []
            for value in inner(collection, env):
                value_kind = kind or value_type(value)
                if value_kind in NUMBER_TYPES:
                    value_kind = "decimal"
                bound = (temporal.high_boundary if high else temporal.low_boundary)(value, value_kind)
                if bound is not None:
                    out.append(bound)
            return out
        return Compiled(run, kind)
    return build


def _iif(focus, arguments, scope):
    condition, *branches = [compile_node(a, focus, scope) for a in arguments]
    when_true = branches[0].run
    when_false = branches[1].run if len(branches) > 1 else (lambda c, env: [])

    def run(collection, env):
        return when_true(collection, env) if singleton_boolean(condition.run(collection, env)) else \
            when_false(collection, env)
    return Compiled(run, branches[0].type)


def _count_arguments(function, count):
    def check(focus, arguments, scope):
        if len(arguments) not in count:
            raise FhirPathError(f"wrong number of arguments: {len(arguments)}")
        return function(focus, arguments, scope)
    return check


def _take_skip(take: bool):
    def build(focus, arguments, scope):
        amount = compile_node(arguments[0], focus, scope)
        inner = focus.run

        def run(collection, env):
            n = _single(amount.run(collection, env), "take/skip") or 0
            items = inner(collection, env)
            return items[:n] if take else items[n:]
        return Compiled(run, focus.type)
    return build


def _to_integer(items):
    value = _single(items, "toInteger")
    if isinstance(value, bool):
        return [int(value)]
    if isinstance(value, int):
        return [value]
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
        return [int(value)]
    return []


def _to_decimal(items):
    value = _single(items, "toDecimal")
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
        return [float(value)]
    return []


def _to_string(items):
    value = _single(items, "toString")
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [value if isinstance(value, str) else str(value)]


def _single_item(items):
    if len(items) > 1:
        raise FhirPathError(f"single() found {len(items)} values")
    return items


def _substring(value, start, length=None):
    if start < 0 or start >= len(value):
        return None
    return value[start:] if length is None else value[start:start + length]


FUNCTIONS: dict[str, Callable[[Compiled, list, Scope], Compiled]] = {
    "where": _count_arguments(_where, {1}),
    "select": _count_arguments(_select, {1}),
    "exists": _count_arguments(_exists, {0, 1}),
    "all": _count_arguments(_all, {1}),
    "empty": _simple(lambda items: [not items], "boolean"),
    "count": _simple(lambda items: [len(items)], "integer"),
    "first": _simple(lambda items: items[:1]),
    "last": _simple(lambda items: items[-1:]),
    "tail": _simple(lambda items: items[1:]),
    "single": _simple(_single_item),
    "distinct": _simple(distinct),
    "hasValue": _simple(lambda items: [len(items) == 1 and not isinstance(items[0], dict)], "boolean"),
    "not": _simple(_not, "boolean"),
    "take": _count_arguments(_take_skip(True), {1}),
    "skip": _count_arguments(_take_skip(False), {1}),
    "join": _count_arguments(_join, {0, 1}),
    "ofType": _count_arguments(_of_type, {1}),
    "as": _count_arguments(_as, {1}),
    "is": _count_arguments(_is, {1}),
    "extension": _count_arguments(_extension, {1}),
    "getResourceKey": _count_arguments(_resource_key, {0}),
    "getReferenceKey": _count_arguments(_reference_key, {0, 1}),
    "lowBoundary": _count_arguments(_boundary(False), {0, 1}),
    "highBoundary": _count_arguments(_boundary(True), {0, 1}),
    "iif": _count_arguments(_iif, {2, 3}),
    "toInteger": _simple(_to_integer, "integer"),
    "toDecimal": _simple(_to_decimal, "decimal"),
    "toString": _simple(_to_string, "string"),
    "trace": lambda focus, arguments, scope: focus,
    "lower": _string_function(str.lower),
    "upper": _string_function(str.upper),
    "trim": _string_function(str.strip),
    "length": _string_function(len, "integer"),
    "startsWith": _string_function(lambda s, p: s.startswith(p), "boolean", 1),
    "endsWith": _string_function(lambda s, p: s.endswith(p), "boolean", 1),
    "contains": _string_function(lambda s, p: p in s, "boolean", 1),
    "matches": _string_function(lambda s, p: re.search(p, s) is not None, "boolean", 1),
    "replace": _string_function(lambda s, a, b: s.replace(a, b), "string", 2),
    "substring": _count_arguments(lambda f, a, s: _string_function(_substring, "string", len(a))(f, a, s), {1, 2}),
    "indexOf": _string_function(lambda s, p: s.find(p), "integer", 1),
}


def compile_call(name: str, arguments: list, focus: Compiled, scope: Scope) -> Compiled:
    """Compile the function `name` applied to `focus`."""
    build = FUNCTIONS.get(name)
    if build is None:
        raise FhirPathError(f"the function {name}() is not supported in views; "
                            f"supported: {', '.join(sorted(FUNCTIONS))}")
    return build(focus, arguments, scope)

