"""FHIRPath operators: boolean logic (three-valued), equality, comparison, arithmetic, union, membership."""
from __future__ import annotations

from ihs.analytics import temporal
from ihs.analytics.fhirpath import Compiled, FhirPathError, singleton_boolean, temporal_kind


def compile_binary(operator: str, left: Compiled, right: Compiled) -> Compiled:
    if operator in _LOGIC:
        return _logic(_LOGIC[operator], left, right)
    if operator in ("=", "!=", "~", "!~"):
        return _equality(operator, left, right)
    if operator in ("<", ">", "<=", ">="):
        return _comparison(operator, left, right)
    if operator == "|":
        return _union(left, right)
    if operator in ("in", "contains"):
        return _membership(operator, left, right)
    if operator == "&":
        return _concatenate(left, right)
    return _arithmetic(operator, left, right)


# ---------------------------------------------------------------------------- logic

def _and(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a, b):
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _xor(a, b):
    return None if a is None or b is None else a != b


def _implies(a, b):
    if a is False or b is True:
        return True
    return None if a is None or b is None else False


_LOGIC = {"and": _and, "or": _or, "xor": _xor, "implies": _implies}


def _logic(combine, left: Compiled, right: Compiled) -> Compiled:
    run_left, run_right = left.run, right.run

    def run(collection, env):
        result = combine(singleton_boolean(run_left(collection, env)), singleton_boolean(run_right(collection, env)))
        return [] if result is None else [result]
    return Compiled(run, "boolean")


# ---------------------------------------------------------------------------- equality and order

def items_equal(a, b, kind: str | None) -> bool | None:
    """FHIRPath `=` of two single items; None when incomparable (dates of different precision)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if kind and isinstance(a, str) and isinstance(b, str):
        order = temporal.compare(a, b, kind)
        return None if order is None else order == 0
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _equivalent(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return " ".join(a.lower().split()) == " ".join(b.lower().split())
    return items_equal(a, b, None) is True


def _equality(operator: str, left: Compiled, right: Compiled) -> Compiled:
    kind = temporal_kind(left.type, right.type)
    run_left, run_right = left.run, right.run
    negate = operator.startswith("!")
    equivalence = operator.endswith("~")

    def run(collection, env):
        a, b = run_left(collection, env), run_right(collection, env)
        if equivalence:
            if len(a) != len(b):
                return [negate]
            same = all(any(_equivalent(x, y) for y in b) for x in a)
            return [same != negate]
        if not a or not b:
            return []
        if len(a) != len(b):
            return [negate]
        for x, y in zip(a, b):
            same = items_equal(x, y, kind)
            if same is None:
                return []
            if not same:
                return [negate]
        return [not negate]
    return Compiled(run, "boolean")


def _order(a, b, kind: str | None) -> int | None:
    if isinstance(a, bool) or isinstance(b, bool):
        raise FhirPathError("booleans cannot be compared with < or >")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        if kind:
            return temporal.compare(a, b, kind)
        return (a > b) - (a < b)
    raise FhirPathError(f"cannot compare {type(a).__name__} with {type(b).__name__}")


_TESTS = {"<": lambda o: o < 0, ">": lambda o: o > 0, "<=": lambda o: o <= 0, ">=": lambda o: o >= 0}


def _comparison(operator: str, left: Compiled, right: Compiled) -> Compiled:
    kind = temporal_kind(left.type, right.type)
    run_left, run_right, test = left.run, right.run, _TESTS[operator]

    def run(collection, env):
        a, b = run_left(collection, env), run_right(collection, env)
        if not a or not b:
            return []
        if len(a) > 1 or len(b) > 1:
            raise FhirPathError(f"'{operator}' compares single values; found {len(a)} and {len(b)}")
        order = _order(a[0], b[0], kind)
        return [] if order is None else [test(order)]
    return Compiled(run, "boolean")


# ---------------------------------------------------------------------------- collections

def distinct(items: list) -> list:
    out = []
    for item in items:
        if not any(items_equal(item, seen, None) for seen in out):
            out.append(item)
    return out


def _union(left: Compiled, right: Compiled) -> Compiled:
    run_left, run_right = left.run, right.run
    same_type = left.type if left.type == right.type else None
    return Compiled(lambda c, env: distinct(run_left(c, env) + run_right(c, env)), same_type)


def _membership(operator: str, left: Compiled, right: Compiled) -> Compiled:
    element, container = (left, right) if operator == "in" else (right, left)
    run_element, run_container = element.run, container.run
    kind = temporal_kind(left.type, right.type)

    def run(collection, env):
        item = run_element(collection, env)
        if not item:
            return []
        if len(item) > 1:
            raise FhirPathError(f"'{operator}' tests one value")
        return [any(items_equal(item[0], x, kind) for x in run_container(collection, env))]
    return Compiled(run, "boolean")


# ---------------------------------------------------------------------------- arithmetic

def _concatenate(left: Compiled, right: Compiled) -> Compiled:
    run_left, run_right = left.run, right.run

    def text(items):
        if len(items) > 1:
            raise FhirPathError("'&' joins single strings")
        return items[0] if items else ""
    return Compiled(lambda c, env: [text(run_left(c, env)) + text(run_right(c, env))], "string")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _calculate(operator: str, a, b):
    if operator == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (_number(a) and _number(b)):
        raise FhirPathError(f"'{operator}' needs numbers; found {type(a).__name__} and {type(b).__name__}")
    if operator == "+":
        return a + b
    if operator == "-":
        return a - b
    if operator == "*":
        return a * b
    if b == 0:
        return None
    if operator == "/":
        return a / b
    if operator == "div":
        return int(a // b) if (a >= 0) == (b >= 0) else -int(abs(a) // abs(b))
    return a - b * int(a / b)  # mod: the sign follows the dividend


def _arithmetic(operator: str, left: Compiled, right: Compiled) -> Compiled:
    run_left, run_right = left.run, right.run
    if operator == "/":
        result_type = "decimal"
    elif left.type == right.type == "integer" or operator == "div":
        result_type = "integer"
    elif "string" in (left.type, right.type):
        result_type = "string"
    else:
        result_type = "decimal" if left.type and right.type else None

    def run(collection, env):
        a, b = run_left(collection, env), run_right(collection, env)
        if not a or not b:
            return []
        if len(a) > 1 or len(b) > 1:
            raise FhirPathError(f"'{operator}' takes single values")
        value = _calculate(operator, a[0], b[0])
        return [] if value is None else [value]
    return Compiled(run, result_type)
