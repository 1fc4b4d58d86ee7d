"""Value sets and code hierarchies for the token modifiers :in, :not-in, :above and :below.

Answered from the pre-expanded R4 value sets shipped in ihs/fhir/definitions (no terminology
server): an expansion lists (system, code) pairs, and entries that carry a parent code give the
code system's hierarchy.
"""
from __future__ import annotations

from collections import defaultdict
from functools import cache

from ihs.fhir.definitions import open_valuesets, valuesets
from ihs.store.search.values import BadValue


def expand(url: str) -> dict[str, frozenset[str]]:
    """system -> codes of the value set `url` (a version after '|' is ignored); BadValue if unusable."""
    url = url.split("|", 1)[0]
    entries = valuesets().get(url)
    if entries is None:
        raise BadValue(f"'{url}' is not a value set this server can expand")
    if url in open_valuesets():
        raise BadValue(f"the expansion of '{url}' is incomplete (a large or external code system), so "
                       ":in/:not-in cannot be answered exactly")
    return _grouped(url)


@cache
def _grouped(url: str) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for entry in valuesets()[url]:
        found[entry[0]].add(entry[1])
    return {system: frozenset(codes) for system, codes in found.items()}


@cache
def _hierarchy() -> tuple[dict, dict]:
    """(children, parents): system -> code -> set of codes, from expansion entries with a parent."""
    children: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    parents: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for entries in valuesets().values():
        for entry in entries:
            if len(entry) > 3 and entry[3]:
                children[entry[0]][entry[3]].add(entry[1])
                parents[entry[0]][entry[1]].add(entry[3])
    return children, parents


def _systems_with(code: str) -> list[str]:
    children, parents = _hierarchy()
    return sorted({s for s, codes in children.items() if code in codes} | {s for s, codes in parents.items()
                                                                           if code in codes})


def related(system: str | None, code: str, direction: str) -> dict[str | None, frozenset[str]]:
    """The code and its descendants (`below`) or ancestors (`above`), by system.

    Without a system, every system whose hierarchy knows the code; a code no hierarchy knows
    is related only to itself (system None: any system).
    """
    children, parents = _hierarchy()
    links = children if direction == "below" else parents
    systems = [system] if system else _systems_with(code)
    if not systems:
        return {system: frozenset({code})}
    out = {}
    for s in systems:
        found, todo = {code}, [code]
        while todo:
            for nxt in links.get(s, {}).get(todo.pop(), ()):
                if nxt not in found:
                    found.add(nxt)
                    todo.append(nxt)
        out[s] = frozenset(found)
    return out
