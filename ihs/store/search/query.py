"""A search query string parsed against the SearchParameter registry.

`parse_query` splits (name, value) pairs into filter criteria -- each a tree of `Leaf`, `Chain`
(`subject:Patient.name=x`) and `Has` (`_has:Observation:patient:code=x`) nodes -- and the result
parameters (`_sort`, `_count`, `_include`, ...) in `Controls`. A name or value that does not parse
becomes an `Issue` naming the parameter: the caller raises them (strict) or reports them as
warnings and drops the criterion (`Prefer: handling=lenient`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from ihs.fhir.errors import FhirError, Issue
from ihs.fhir.fhirpath_compile import RESOURCE_TYPES
from ihs.fhir.searchparams import SearchParam
from ihs.store.search import filtering, fulltext, hierarchy, lists, near, terminology, values as v
from ihs.store.search.special import Special

# modifiers this engine implements, by parameter type (":[type]" of references is handled apart)
MODIFIERS = {
    "string": {"missing", "exact", "contains"},
    "token": {"missing", "text", "not", "above", "below", "in", "not-in", "of-type"},
    "reference": {"missing", "identifier", "above", "below"},
    "uri": {"missing", "above", "below"},
    "date": {"missing"}, "number": {"missing"}, "quantity": {"missing"}, "composite": {"missing"},
}
RESULT_PARAMS = {"_sort", "_count", "_offset", "_total", "_summary", "_elements", "_include", "_revinclude",
                 "_contained", "_containedType", "_format", "_pretty", "_type"}
SUMMARY_MODES = ("true", "text", "data", "count", "false")
TOTAL_MODES = ("none", "estimate", "accurate")
DEFAULT_COUNT = 50
MAX_COUNT = 1000


class Pending(Exception):
    """The parameter is a user-defined SearchParameter whose index backfill has not finished."""


@dataclass(frozen=True)
class Leaf:
    """One parameter test: the values are alternatives (OR)."""

    param: SearchParam
    modifier: str | None
    values: tuple
    target_type: str | None = None  # reference :[type]


@dataclass(frozen=True)
class Chain:
    """`param.rest=value`: the reference `param` points to a resource matching `targets[type]`."""

    param: SearchParam
    targets: tuple[tuple[str, "Node"], ...]


@dataclass(frozen=True)
class Has:
    """`_has:source:param:rest=value`: some `source` resource references this one by `param` and matches."""

    source: str
    param: SearchParam
    inner: "Node"


Node = Union[Leaf, Chain, Has, Special]


@dataclass(frozen=True)
class Criterion:
    """A filter as written (name, value) and its parsed tree for one resource type."""

    name: str
    value: str
    node: Node


@dataclass(frozen=True)
class Include:
    source: str | None  # None: any type (`*`)
    param: str | None  # None: every reference parameter (`Type:*`)
    target: str | None
    iterate: bool
    reverse: bool


@dataclass
class Controls:
    """The result parameters of a search."""

    count: int = DEFAULT_COUNT
    offset: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (code, descending)
    total: str | None = None  # none | estimate | accurate; None: accurate when cheap
    summary: str | None = None
    elements: list[str] | None = None
    includes: list[Include] = field(default_factory=list)
    contained: str = "false"
    contained_type: str = "container"
    written: list[tuple[str, str]] = field(default_factory=list)  # as they go into paging links


@dataclass
class ParsedQuery:
    types: list[str]
    criteria: dict[str, list[Criterion]]  # resource type -> its criteria (AND)
    controls: Controls
    issues: list[Issue]  # what lenient handling ignored
    pending: list[str]  # user-defined parameters whose backfill is not finished


Lookup = Callable[[str, str], SearchParam | None]  # (resource type, code) -> parameter; may raise Pending


def _bad(name: str, message: str, code: str = "invalid") -> FhirError:
    return FhirError(f"search parameter '{name}': {message}", code=code)


def parse_query(types: list[str], query: list[tuple[str, str]], lookup: Lookup, *, base: str | None = None,
                lenient: bool = False, system_level: bool = False) -> ParsedQuery:
    """Parse `query` for a search over `types`; strict parsing raises one FhirError listing every problem."""
    parsed = ParsedQuery(list(types), {t: [] for t in types}, Controls(), [], [])
    problems: list[Issue] = []
    for name, value in query:
        try:
            if name in RESULT_PARAMS or name.split(":", 1)[0] in ("_include", "_revinclude"):
                _control(parsed, name, value, lookup, system_level)
                continue
            nodes = [parse_criterion(res_type, name, value, lookup, base) for res_type in types]
            for res_type, node in zip(types, nodes):
                parsed.criteria[res_type].append(Criterion(name, value, node))
        except Pending:
            parsed.pending.append(name)
        except FhirError as exc:
            problems.extend(exc.issues)
    for code, _ in parsed.controls.sort:
        try:
            if len({sort_param(res_type, code, lookup).type for res_type in types}) > 1:
                raise _bad("_sort", f"'{code}' has a different type in each of {', '.join(types)}")
        except Pending:
            parsed.pending.append(f"_sort={code}")
        except FhirError as exc:
            problems.extend(exc.issues)
            parsed.controls.sort = [s for s in parsed.controls.sort if s[0] != code]
    if problems and not lenient:
        raise FhirError(problems)
    parsed.issues = [Issue(i.diagnostics + " (ignored)", i.expression, i.code, "warning") for i in problems]
    return parsed


def sort_param(res_type: str, code: str, lookup: Lookup) -> SearchParam:
    param = lookup(res_type, code)
    if param is None:
        raise _bad("_sort", f"{res_type} has no search parameter '{code}'", "not-supported")
    if param.type not in ("string", "token", "reference", "date", "number", "quantity", "uri"):
        raise _bad("_sort", f"'{code}' is a {param.type} parameter and cannot order results", "not-supported")
    return param


# ---------------------------------------------------------------------------- criteria

def parse_criterion(res_type: str, name: str, value: str, lookup: Lookup, base: str | None = None) -> Node:
    """The tree of one filter parameter for `res_type`, or a FhirError naming the parameter."""
    if name.startswith("_has:"):
        return _parse_has(res_type, name, value, lookup, base)
    special = name.split(":", 1)[0]
    if special == "_list":
        return lists.parse(res_type, name, value, lambda n, x: parse_criterion(res_type, n, x, lookup, base))
    if special in fulltext.COLUMNS and lookup(res_type, special) is not None:
        return fulltext.parse(name, value)
    if special == "near" and res_type == "Location":
        return near.parse(name, value)
    if special == "_filter":
        return filtering.parse(res_type, name, value, lambda n, x: parse_criterion(res_type, n, x, lookup, base),
                               lookup)
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    param = lookup(res_type, code)
    if param is None:
        raise _bad(name, f"{res_type} has no search parameter '{code}'", "not-supported")
    if dot:
        return _parse_chain(res_type, name, param, modifier, rest, value, lookup, base)
    if param.type == "special" or (not param.indexed and param.code not in ("_id", "_lastUpdated")):
        raise _bad(name, f"'{code}' is not supported by this server", "not-supported")
    target_type = None
    if modifier and param.type == "reference" and modifier in RESOURCE_TYPES:
        if param.targets and modifier not in param.targets:
            raise _bad(name, f"'{code}' cannot refer to {modifier} (it refers to {', '.join(param.targets)})")
        target_type, modifier = modifier, None
    if modifier:
        allowed = MODIFIERS.get(param.type, set()) & (set(param.modifiers) | {"missing"})
        if param.code == "_id":
            allowed = {"missing", "not"}
        if modifier not in allowed:
            raise _bad(name, f"the modifier ':{modifier}' is not supported on a {param.type} parameter"
                       + (f" (use {', '.join(':' + m for m in sorted(allowed))})" if allowed else ""),
                       "not-supported")
    if value == "" and modifier != "missing":
        raise _bad(name, "the value is empty")
    if modifier == "missing":
        if value not in ("true", "false"):
            raise _bad(name, f":missing takes true or false, not '{value}'")
        return Leaf(param, "missing", (value == "true",), target_type)
    try:
        parsed = tuple(_parse_value(param, modifier, part, base, lookup) for part in v.split_unescaped(value, ","))
    except v.BadValue as exc:
        raise _bad(name, str(exc)) from None
    return Leaf(param, modifier, parsed, target_type)


def _parse_value(param: SearchParam, modifier: str | None, text: str, base: str | None, lookup: Lookup):
    kind = param.type
    if modifier in ("text", "contains", "exact") or kind == "string":
        return v.unescape(text) if modifier == "exact" else v.normalized(text)
    if modifier == "of-type":
        return v.parse_of_type(text)
    if modifier in ("in", "not-in"):
        return terminology.expand(v.unescape(text))
    if kind == "reference" and modifier in ("above", "below"):
        return hierarchy.parse(param, text, base, modifier)
    if kind == "token" and modifier in ("above", "below"):
        token = v.parse_token(text)
        if not token.code:
            raise v.BadValue(f"'{text}' names no code")
        return terminology.related(token.system or None, token.code, modifier)
    if modifier == "identifier":
        return v.parse_token(text)
    if kind == "token":
        return v.parse_token(text)
    if kind == "number":
        return v.parse_number(text)
    if kind == "date":
        return v.parse_date(text)
    if kind == "quantity":
        return v.parse_quantity(text)
    if kind == "uri":
        return v.unescape(text)
    if kind == "reference":
        return v.parse_reference(text, base)
    if kind == "composite":
        return _parse_composite(param, text, lookup)
    raise v.BadValue(f"{kind} parameters are not supported")


def composite_types(param: SearchParam) -> tuple[str, str]:
    """The types of a composite's two components (the index holds pairs: a token, then any type)."""
    from ihs.fhir.searchparams import registry

    if len(param.components) != 2:
        raise v.BadValue(f"composites of {len(param.components)} components are not indexed")
    kinds = []
    for url, _ in param.components:
        component = registry().by_url(url)
        if component is None:
            raise v.BadValue(f"the component {url} is not a known SearchParameter")
        kinds.append(component.type)
    return kinds[0], kinds[1]


def _parse_composite(param: SearchParam, text: str, lookup: Lookup):
    first, second = composite_types(param)
    parts = v.split_unescaped(text, "$")
    if len(parts) != 2:
        raise v.BadValue(f"'{text}' is not a composite value: write first$second (e.g. 8480-6$gt100)")
    a = v.parse_token(parts[0])
    if second in ("token", "reference", "uri"):
        b = v.parse_token(parts[1]) if second == "token" else v.unescape(parts[1])
    elif second == "number":
        b = v.parse_number(parts[1])
    elif second == "quantity":
        b = v.parse_quantity(parts[1])
    elif second == "date":
        b = v.parse_date(parts[1])
    elif second == "string":
        b = v.normalized(parts[1])
    else:
        raise v.BadValue(f"a {second} component is not supported")
    return a, b


def _parse_chain(res_type: str, name: str, param: SearchParam, modifier: str, rest: str, value: str,
                 lookup: Lookup, base: str | None) -> Chain:
    if param.type != "reference":
        raise _bad(name, f"'{param.code}' is a {param.type} parameter; only references can be chained")
    if modifier and modifier not in RESOURCE_TYPES:
        raise _bad(name, f"a chain takes a resource type modifier, not ':{modifier}'")
    candidates = [modifier] if modifier else list(param.targets)
    if not candidates:
        raise _bad(name, f"'{param.code}' may refer to any type; name one, e.g. {param.code}:Patient.{rest}")
    targets, errors = [], []
    for target in candidates:
        try:
            targets.append((target, parse_criterion(target, rest, value, lookup, base)))
        except FhirError as exc:
            errors.append(exc)
    if not targets:
        if len(errors) == 1 or modifier:
            raise errors[0]
        raise _bad(name, f"no type '{param.code}' refers to ({', '.join(candidates)}) has a search parameter "
                   f"'{rest.split(':')[0].split('.')[0]}'", "not-supported")
    return Chain(param, tuple(targets))


def _parse_has(res_type: str, name: str, value: str, lookup: Lookup, base: str | None) -> Has:
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise _bad(name, "write _has:[type]:[reference parameter]:[parameter], e.g. _has:Observation:patient:code")
    _, source, code, rest = parts
    if source not in RESOURCE_TYPES:
        raise _bad(name, f"'{source}' is not a resource type")
    param = lookup(source, code)
    if param is None or param.type != "reference":
        raise _bad(name, f"{source} has no reference parameter '{code}'", "not-supported")
    if param.targets and res_type not in param.targets:
        raise _bad(name, f"{source}.{code} does not refer to {res_type}")
    return Has(source, param, parse_criterion(source, rest, value, lookup, base))


# ---------------------------------------------------------------------------- result parameters

def _control(parsed: ParsedQuery, name: str, value: str, lookup: Lookup, system_level: bool) -> None:
    c = parsed.controls
    keep = True
    if name in ("_format", "_pretty"):
        keep = False
    elif name == "_type":
        if not system_level:
            raise _bad(name, "_type is for system-level search (GET [base]?_type=...)")
    elif name == "_count":
        if not value.isdigit():
            raise _bad(name, f"'{value}' is not a whole number")
        c.count = min(int(value), MAX_COUNT)
    elif name == "_offset":
        if not value.isdigit():
            raise _bad(name, f"'{value}' is not a whole number")
        c.offset = int(value)
        keep = False  # paging links write their own
    elif name == "_total":
        if value not in TOTAL_MODES:
            raise _bad(name, f"takes {', '.join(TOTAL_MODES)}, not '{value}'")
        c.total = value
    elif name == "_summary":
        if value not in SUMMARY_MODES:
            raise _bad(name, f"takes {', '.join(SUMMARY_MODES)}, not '{value}'")
        c.summary = value
    elif name == "_elements":
        c.elements = [e.strip().split(".", 1)[-1] for e in value.split(",") if e.strip()]
    elif name == "_sort":
        keys = []
        for key in value.split(","):
            key = key.strip()
            if not key or key == "-":
                raise _bad(name, f"'{value}' has an empty sort key")
            keys.append((key.lstrip("-"), key.startswith("-")))
        c.sort.extend(keys)
    elif name == "_contained":
        if value not in ("false", "true", "both"):
            raise _bad(name, f"takes false, true or both, not '{value}'")
        c.contained = value
    elif name == "_containedType":
        if value not in ("container", "contained"):
            raise _bad(name, f"takes container or contained, not '{value}'")
        c.contained_type = value
    else:
        c.includes.append(_parse_include(parsed.types, name, value, lookup))
    if keep:
        c.written.append((name, value))


def _parse_include(types: list[str], name: str, value: str, lookup: Lookup) -> Include:
    what, _, modifier = name.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise _bad(name, f"the modifier ':{modifier}' is not supported (use :iterate)", "not-supported")
    iterate, reverse = bool(modifier), what == "_revinclude"
    if value == "*":
        return Include(None, None, None, iterate, reverse)
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise _bad(name, f"'{value}' must be [type]:[parameter] or [type]:[parameter]:[target type]")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source not in RESOURCE_TYPES:
        raise _bad(name, f"'{source}' is not a resource type")
    if target is not None and target not in RESOURCE_TYPES:
        raise _bad(name, f"'{target}' is not a resource type")
    if code != "*":
        param = lookup(source, code)
        if param is None or param.type != "reference":
            raise _bad(name, f"{source} has no reference parameter '{code}'", "not-supported")
        if target and param.targets and target not in param.targets:
            raise _bad(name, f"{source}.{code} does not refer to {target}")
    if not iterate and not reverse and source not in types:
        raise _bad(name, f"{source} is not a type being searched; use _include:iterate to follow included "
                   "resources")
    return Include(source, None if code == "*" else code, target, iterate, reverse)
