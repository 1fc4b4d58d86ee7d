"""Search values tagged with their position in the query (`slot`), for compiling a statement once per shape.

A tagged value is a `str`, `int` or `float` like any other (SQL builders compare, slice and format it
as usual), carrying `slot` = (position, derivations). A value the builders compute from a value must
go through `derived`, which tags the result with the same position and the function applied, so a
later search of the same shape can compute it from its own value (ihs/store/search/shapes.py).
"""
from __future__ import annotations

from typing import Callable


class _Str(str):
    slot: tuple


class _Int(int):
    slot: tuple


class _Float(float):
    slot: tuple


_TAGGED = {str: _Str, int: _Int, float: _Float}
TAGGABLE = frozenset(_TAGGED)


def tag(value, slot: tuple):
    tagged = _TAGGED[type(value)](value)
    tagged.slot = slot
    return tagged


def slot_of(value) -> tuple | None:
    return getattr(value, "slot", None)


def derived(value, fn: Callable):
    """`fn(value)`, tagged as computed from the same slot when `value` is tagged."""
    result = fn(value)
    slot = getattr(value, "slot", None)
    if slot is None:
        return result
    if type(result) not in _TAGGED:
        raise TypeError(f"{fn.__name__} returned a {type(result).__name__}, which cannot be bound per shape")
    return tag(result, (slot[0], slot[1] + (fn,)))
