"""`_filter`: the R4 filter expression language (https://hl7.org/fhir/R4/search_filter.html).

`_filter=name co "pet" and (birthdate ge 1980 or not (gender eq male))` is parsed into the same
criterion trees as ordinary parameters -- each `path op value` becomes the `Leaf` or `Chain` that
`path:modifier=prefixvalue` would give, so paths through references (`subject.name sw "smi"`) are
chains -- and combined by `Logic` nodes (and, or, not) into one SQL condition. `and` binds tighter
than `or`; parentheses group. Operators by parameter type:

- every type: `pr true|false` (has a value or not: :missing);
- string: eq (the whole value, case and accents ignored), ne, co, sw, ew;
- token: eq, ne, ss (subsumes: :below), sb (subsumed by: :above), in, ni (value sets);
- uri: eq, ne, sw, ss, sb; reference: eq, ne, re;
- date: eq, ne, gt, lt, ge, le, sa, eb, ap, po (the periods overlap);
- number, quantity: eq, ne, gt, lt, ge, le, sa, eb, ap.

`param[filter].rest` (filtering the values of a backbone element) is not supported.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from sqlalchemy import and_, false, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ihs.fhir.errors import FhirError
from ihs.fhir.searchparams import SearchParam
from ihs.store.schema import INDEX_TABLES
from ihs.store.search import values as v
from ihs.store.search.special import Special

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
OPERATORS = {
    "string": {"eq", "ne", "co", "sw", "ew", "pr"},
    "token": {"eq", "ne", "ss", "sb", "in", "ni", "pr"},
    "uri": {"eq", "ne", "sw", "ss", "sb", "pr"},
    "reference": {"eq", "ne", "re", "pr"},
    "date": {*PREFIXES, "po", "pr"},
    "number": {*PREFIXES, "pr"},
    "quantity": {*PREFIXES, "pr"},
    "composite": {"eq", "pr"},
}
_TOKEN = re.compile(r'\s*(?:(?P<open>[(\[])|(?P<close>[)\]])|(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()\[\]"]+))')


@dataclass(frozen=True)
class Logic(Special):
    """`and` / `or` of several criteria, or `not` of one."""

    op: str
    children: tuple

    @property
    def rank(self) -> int:
        from ihs.store.search.where import rank

        if self.op == "not":
            return 9
        ranks = [rank(child) for child in self.children]
        return min(ranks) if self.op == "and" else max(ranks)

    def condition(self, r, types: Sequence[str] | None, driving: bool) -> ColumnElement:
        from ihs.store.search.where import conditions, node_condition

        if self.op == "not":
            return not_(node_condition(self.children[0], r, types, False))
        if self.op == "or":
            return or_(*(node_condition(child, r, types, driving) for child in self.children))
        if driving:
            return and_(*conditions(list(self.children), r, types)[0])
        return and_(*(node_condition(child, r, types, False) for child in self.children))


@dataclass(frozen=True)
class RowTest(Special):
    """A test of one parameter's index rows that no modifier expresses (string eq and ew, date po)."""

    param: SearchParam
    match: Callable  # (columns of the index table) -> condition on one row
    rank: int = 3

    def condition(self, r, types: Sequence[str] | None, driving: bool) -> ColumnElement:
        from ihs.store.search.conditions import rows_test, type_filter

        c = INDEX_TABLES[self.param.type].c
        rows = select(c.rid).where(type_filter(c.res_type, types if driving else None), c.param == self.param.code,
                                   self.match(c))
        return rows_test(r.c.rid, rows, negated=False, driving=driving)


# ---------------------------------------------------------------------------- the expression

class _Tokens:
    def __init__(self, name: str, text: str):
        self.name, self.items, at = name, [], 0
        text = text.rstrip()
        while at < len(text):
            match = _TOKEN.match(text, at)
            if not match or match.end() == at:
                self.fail(f"cannot read '{text[at:at + 20]}'")
            kind = match.lastgroup
            self.items.append((kind, match.group(kind)))
            at = match.end()
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self, what: str) -> tuple[str, str]:
        item = self.peek()
        if item is None:
            self.fail(f"the expression ends where {what} was expected")
        self.at += 1
        return item

    def fail(self, message: str):
        raise FhirError(f"search parameter '{self.name}': {message} (see https://hl7.org/fhir/R4/search_filter.html)")


Parse = Callable[[str, str], object]  # (name with modifier, value) -> criterion tree, as ordinary parameters


def parse(res_type: str, name: str, value: str, parse_criterion: Parse, lookup):
    """The tree of one `_filter` expression for `res_type`."""
    if name != "_filter":
        raise FhirError(f"search parameter '{name}': _filter takes no modifier", code="not-supported")
    tokens = _Tokens(name, value)
    if tokens.peek() is None:
        tokens.fail("the expression is empty")
    node = _or(tokens, res_type, parse_criterion, lookup)
    if tokens.peek() is not None:
        tokens.fail(f"'{tokens.peek()[1]}' is unexpected (join expressions with and / or)")
    return node


def _or(tokens, res_type, parse_criterion, lookup):
    return _joined("or", _and, tokens, res_type, parse_criterion, lookup)


def _and(tokens, res_type, parse_criterion, lookup):
    return _joined("and", _unary, tokens, res_type, parse_criterion, lookup)


def _joined(word, operand, tokens, *context):
    """`operand (word operand)*`: and binds tighter than or because _or's operands are _and's."""
    children = [operand(tokens, *context)]
    while tokens.peek() == ("word", word):
        tokens.take(word)
        children.append(operand(tokens, *context))
    return children[0] if len(children) == 1 else Logic(word, tuple(children))


def _unary(tokens, res_type, parse_criterion, lookup):
    item = tokens.take("a parameter, 'not' or '('")
    if item == ("word", "not"):
        if tokens.take("'(' after not") != ("open", "("):
            tokens.fail("not takes a parenthesized expression: not (gender eq male)")
        return Logic("not", (_group(tokens, res_type, parse_criterion, lookup),))
    if item == ("open", "("):
        return _group(tokens, res_type, parse_criterion, lookup)
    if item[0] != "word":
        tokens.fail(f"'{item[1]}' is not a parameter name")
    path = item[1]
    if tokens.peek() and tokens.peek()[0] == "open":
        tokens.fail(f"'{path}[...]' (filtering the values of an element) is not supported")
    op = tokens.take("an operator (eq, co, gt, ...)")[1]
    kind, written = tokens.take("a value")
    if kind not in ("word", "string"):
        tokens.fail(f"'{written}' is not a value")
    text = json.loads(written) if kind == "string" else written
    return _comparison(tokens, res_type, path, op, text, parse_criterion, lookup)


def _group(tokens, res_type, parse_criterion, lookup):
    node = _or(tokens, res_type, parse_criterion, lookup)
    if tokens.take("')'") != ("close", ")"):
        tokens.fail("a '(' is not closed")
    return node


# ---------------------------------------------------------------------------- one comparison

def _final_param(res_type: str, path: str, lookup) -> SearchParam | None:
    """The parameter at the end of `path` (a.b.c follows references), for the first target that has it."""
    head, _, rest = path.partition(".")
    param = lookup(res_type, head)
    if param is None or not rest:
        return param
    if param.type != "reference":
        return None
    for target in param.targets:
        found = _final_param(target, rest, lookup)
        if found is not None:
            return found
    return None


def _escaped(text: str) -> str:
    """A filter value as one value of an ordinary parameter (its commas are not alternatives)."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$")


def _graft(node, leaf_to):
    """`node` with the Leaf at the end of each chain replaced by `leaf_to(leaf)`."""
    from ihs.store.search.query import Chain, Leaf

    if isinstance(node, Leaf):
        return leaf_to(node)
    if isinstance(node, Chain):
        return replace(node, targets=tuple((target, _graft(inner, leaf_to)) for target, inner in node.targets))
    return node


def _comparison(tokens, res_type, path, op, text, parse_criterion, lookup):
    param = _final_param(res_type, path, lookup)
    if param is None:
        tokens.fail(f"{res_type} has no search parameter path '{path}'")
    allowed = OPERATORS.get(param.type, {"eq", "pr"}) if param.code not in ("_id", "_lastUpdated") else \
        ({"eq", "ne", "pr"} if param.code == "_id" else {*PREFIXES, "pr"})
    if op not in allowed:
        tokens.fail(f"'{op}' does not apply to '{path}', a {param.type} parameter (use {', '.join(sorted(allowed))})")
    value = _escaped(text)

    def criterion(modifier: str = "", prefix: str = ""):
        return parse_criterion(path + (":" + modifier if modifier else ""), prefix + value)

    if op == "pr":
        if text not in ("true", "false"):
            tokens.fail(f"pr takes true or false, not '{text}'")
        return parse_criterion(path + ":missing", "false" if text == "true" else "true")
    kind = param.type if param.code not in ("_id", "_lastUpdated") else ("token" if param.code == "_id" else "date")
    if kind == "string":
        if op == "co":
            return criterion("contains")
        if op == "sw":
            return criterion()
        wanted = v.normalized(value)
        if op == "ew":
            return _graft(criterion(), lambda leaf: RowTest(leaf.param, lambda c: c.value.like(
                "%" + _like_escape(wanted), escape="\\")))
        equal = _graft(criterion(), lambda leaf: RowTest(leaf.param, lambda c: c.value == wanted))
        return equal if op == "eq" else Logic("not", (equal,))
    if kind in ("token", "uri"):
        modifier = {"ss": "below", "sb": "above", "in": "in", "ni": "not-in", "sw": "below"}.get(op, "")
        if kind == "uri" and op in ("ss", "sb"):
            modifier = "below" if op == "ss" else "above"
        if op == "ne":
            return Logic("not", (criterion(),))
        return criterion(modifier)
    if kind == "reference":
        return Logic("not", (criterion(),)) if op == "ne" else criterion()
    if kind == "date" and op == "po":
        try:
            span = v.parse_date(value)
        except v.BadValue as exc:
            tokens.fail(str(exc))
        return _graft(criterion(), lambda leaf: RowTest(leaf.param, lambda c: and_(c.low < span.high,
                                                                                   c.high > span.low)))
    if kind in ("date", "number", "quantity"):
        return criterion(prefix=op)
    return criterion() if op == "eq" else false()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
