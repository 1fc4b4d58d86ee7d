"""Compiled SQL per query shape: a search's statements are built once per shape, then run as SQL text.

A shape is everything that decides a statement's SQL except the values: the types searched, each
criterion's parameter, modifier and value structure (a date's prefix, which parts of a token are
given, ...), how selective each test ranks, the test the planner chose to drive, `_sort`. The first
search of a shape builds its statement with SQLAlchemy Core from a copy of the criteria whose values
are tagged with their position (`slot`), compiles it, and traces every bound parameter back to its
slot; a parameter that carries no tag is a constant of the shape (a parameter code, a type). Later
searches of the shape bind their own values in those positions and send the SQL text as it is: no
statement building, no cache key, no compilation.

The rule this rests on, for the SQL builders (conditions, where, ranges, prepared, includes): a value
goes into a statement unchanged or through `derived(value, fn)`, which keeps its tag; any other
computation on a value would be taken for a constant. A shape this module does not know (another kind of node,
modifier or value) raises `Unknown` from `Walk`, and the caller builds its statement each time.
"""
from __future__ import annotations

import threading

from ihs.store.protected import searched_codes
from ihs.store.search import values as v
from ihs.store.search.conditions import selectivity
from ihs.store.search.query import Chain, Has, Leaf
from ihs.store.search.ranges import Window
from ihs.store.search.slots import TAGGABLE, slot_of, tag

# (parameter type, modifier) pairs whose SQL is the plain function of the slots below
_KNOWN = {
    ("string", None), ("string", "exact"), ("string", "contains"),
    ("token", None), ("token", "not"), ("token", "text"),
    ("reference", None), ("reference", "identifier"),
    ("date", None), ("number", None), ("uri", None), ("uri", "below"),
}
MAX_SHAPES = 4096


class Unknown(Exception):
    """A node, modifier or value this module cannot trace to slots."""


class Walk:
    """One pass over criteria: the shape key, the values in slot order and, when asked, tagged copies."""

    def __init__(self, tag: bool):
        self.tag = tag
        self.slots: list = []
        self.keep: list = []  # the objects named by id() in the key, kept alive while a shape uses it

    def value(self, raw):
        if raw is None:
            return None
        if type(raw) not in TAGGABLE:
            raise Unknown(type(raw).__name__)
        self.slots.append(raw)
        return tag(raw, (len(self.slots) - 1, ())) if self.tag else raw

    def param(self, param) -> int:
        self.keep.append(param)
        return id(param)

    def node(self, node):
        """(key, the node with tagged values or the node itself)."""
        if type(node) is Leaf:
            return self.leaf(node)
        if type(node) is Window:
            lower_key, lower = self.leaf(node.lower)
            upper_key, upper = self.leaf(node.upper)
            return ("window", self.param(node.param), lower_key, upper_key), \
                (Window(node.param, lower, upper) if self.tag else node)
        if type(node) is Chain:
            keys, targets = [], []
            for target, inner in node.targets:
                inner_key, inner = self.node(inner)
                keys.append((target, inner_key))
                targets.append((target, inner))
            return ("chain", self.param(node.param), tuple(keys)), \
                (Chain(node.param, tuple(targets)) if self.tag else node)
        if type(node) is Has:
            inner_key, inner = self.node(node.inner)
            return ("has", node.source, self.param(node.param), inner_key), \
                (Has(node.source, node.param, inner) if self.tag else node)
        raise Unknown(type(node).__name__)

    def leaf(self, leaf: Leaf):
        param, modifier = leaf.param, leaf.modifier or None
        key = [self.param(param), modifier, leaf.target_type, selectivity(leaf)]
        if modifier == "missing":
            key.append(leaf.values[0])
            return tuple(key), leaf
        kind = "id" if param.code == "_id" else param.type
        if kind != "id" and (param.type, modifier) not in _KNOWN:
            raise Unknown(f"{param.type}:{modifier}")
        if kind == "id" and modifier not in (None, "not"):
            raise Unknown(f"_id:{modifier}")
        values = []
        for value in leaf.values:
            shape, value = self._value(value)
            key.append(shape)
            values.append(value)
        if kind == "id" and len({t.code for t in leaf.values}) != len(leaf.values):
            raise Unknown("repeated _id values")  # a set of them is bound: their positions would shift
        if modifier == "identifier" or (kind == "token" and param.code == "identifier" and modifier != "text"):
            # protected systems are searched by a keyed hash: which codes are hashed is structure
            key.append(tuple(tuple(code == t.code for code in searched_codes(t.system, t.code))
                             for t in leaf.values if t.code is not None))
        return tuple(key), (Leaf(param, modifier, tuple(values), leaf.target_type) if self.tag else leaf)

    def _value(self, value):
        kind = type(value)
        if kind is str:
            return "s", self.value(value)
        if kind is v.Token:
            shape = ("t", value.system is None, value.system == "", value.code is None)
            system = self.value(value.system) if value.system else value.system  # None and "": structure
            return shape, v.Token(system, self.value(value.code))
        if kind is v.Reference:
            shape = ("r", value.type is None, value.id is None, value.url is None, value.type)
            return shape, v.Reference(value.type, self.value(value.id), self.value(value.url))
        if kind is v.DateRange:
            if value.prefix == "ap":
                raise Unknown("ap")  # widened relative to the current time
            return ("d", value.prefix), v.DateRange(value.prefix, self.value(value.low), self.value(value.high))
        if kind is v.Number:
            if value.prefix == "ap":
                raise Unknown("ap")
            return ("n", value.prefix), v.Number(value.prefix, self.value(value.value), self.value(value.low),
                                                 self.value(value.high))
        raise Unknown(kind.__name__)


class Compiled:
    """A shape's SQL text and, per bound parameter, its slot and derivations or its constant value."""

    def __init__(self, sql: str, binds: list[tuple], positional: bool, keep: list, extra=None):
        self.sql, self.binds, self.positional, self.keep, self.extra = sql, binds, positional, keep, extra

    def parameters(self, slots: list):
        values = []
        for name, slot, fns, constant, process in self.binds:
            if slot is None:
                value = constant
            else:
                value = slots[slot]
                for fn in fns:
                    value = fn(value)
                if process is not None:
                    value = process(value)
            values.append(value)
        if self.positional:
            return tuple(values)
        return {bind[0]: value for bind, value in zip(self.binds, values)}


def compile_statement(conn, statement, keep: list, extra=None) -> Compiled:
    """Compile `statement` (built from tagged values) and trace each bound parameter to its slot."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors
    names = list(compiled.positiontup) if compiled.positional else list(params)
    binds = []
    for name in names:
        value = params[name]
        slot = slot_of(value)
        process = processors.get(name)
        if slot is None:
            binds.append((name, None, (), process(value) if process is not None else value, None))
        else:
            binds.append((name, slot[0], slot[1], None, process))
    return Compiled(str(compiled), binds, compiled.positional, keep, extra)


class Cache:
    """Compiled shapes by key, per process; emptied when full (shapes are few, values many)."""

    def __init__(self, size: int = MAX_SHAPES):
        self.size = size
        self._shapes: dict = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0  # searches served from a compiled shape, and shapes compiled

    def get(self, key):
        found = self._shapes.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key, compiled: Compiled) -> None:
        with self._lock:
            if len(self._shapes) >= self.size:
                self._shapes.clear()
            self._shapes[key] = compiled


shapes = Cache()
