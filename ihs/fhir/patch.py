"""The PATCH interaction: JSON Patch (RFC 6902) and FHIR Patch (a Parameters resource).

Both functions are pure: they return a patched copy and never touch their input. A patch
that cannot apply to this resource (a failed `test`, a path that selects nothing) is a 422;
a malformed patch document, or one that would change the resource's `resourceType` or
`id`, is a 400. The caller validates the result against the StructureDefinition afterwards.

FHIR Patch paths are the FHIRPath subset the specification uses: dotted names, indexers
`[n]`, `where(...)` (evaluated with fhirpathpy), `first()`, `last()`, `ofType(T)` and
`extension('url')`. They are navigated here, not by fhirpathpy, because an operation must
know the object that *holds* the selected element in order to change it.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import fhirpathpy
from fhirpathpy.models import models

from ihs.fhir import structure
from ihs.fhir.errors import FhirError

_MODEL = models["r4"]
_CHOICES: dict[str, list[str]] = _MODEL["choiceTypePaths"]

Fail = Callable[..., NoReturn]
Repeats = Callable[[str], bool]  # element definition path -> whether it may repeat


# ---------------------------------------------------------------- JSON Patch (RFC 6902)

_JSON_OPS = ("add", "remove", "replace", "move", "copy", "test")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


def apply_json_patch(resource: dict, operations: list) -> dict:
    """Apply a JSON Patch document (a list of RFC 6902 operations); return the patched copy."""
    if not isinstance(operations, list):
        raise FhirError("a JSON Patch document must be a JSON array of operations", 400, code="structure")
    doc = copy.deepcopy(resource)
    for index, operation in enumerate(operations):
        doc = _json_operation(doc, index, operation, resource)
    return doc


def _json_operation(doc: Any, index: int, operation: Any, original: dict) -> Any:
    op = operation.get("op") if isinstance(operation, dict) else None
    path = operation.get("path") if isinstance(operation, dict) else None

    def fail(message: str, status: int = 422, tokens: list[str] | None = None) -> NoReturn:
        where = f"({op} {path})" if isinstance(path, str) else f"({op})"
        raise FhirError(f"JSON Patch operation {index} {where}: {message}", status,
                        code="processing" if status == 422 else "invalid",
                        expression=_pointer_expression(original, tokens))

    if op not in _JSON_OPS:
        fail(f"'op' must be one of {', '.join(_JSON_OPS)}", 400)
    tokens = _pointer(path, "path", fail)
    if op in ("add", "replace", "test") and "value" not in operation:
        fail(f"a '{op}' operation needs a 'value'", 400)
    source = _pointer(operation.get("from"), "from", fail) if op in ("move", "copy") else []
    if op == "test":
        if not _json_equal(_walk(doc, tokens, fail), operation["value"]):
            fail(f"test failed: the value at '{path}' is not the given value", 422, tokens)
        return doc
    if op == "move" and len(tokens) > len(source) and tokens[:len(source)] == source:
        fail("a value cannot be moved into one of its own children", 400, tokens)
    if op == "add":
        doc = _json_add(doc, tokens, copy.deepcopy(operation["value"]), fail)
    elif op == "remove":
        doc = _json_remove(doc, tokens, fail)[0]
    elif op == "replace":
        doc = _json_replace(doc, tokens, copy.deepcopy(operation["value"]), fail)
    elif op == "move" and source != tokens:
        doc, value = _json_remove(doc, source, fail)
        doc = _json_add(doc, tokens, value, fail)
    elif op == "copy":
        doc = _json_add(doc, tokens, copy.deepcopy(_walk(doc, source, fail)), fail)
    if changed := _changed_identity(original, doc):
        fail(f"a patch must not change the resource's {changed}", 400, [changed])
    return doc


def _pointer(text: Any, field: str, fail: Fail) -> list[str]:
    """The reference tokens of an RFC 6901 JSON Pointer, with ~1 and ~0 unescaped (in that order)."""
    if not isinstance(text, str) or (text and not text.startswith("/")):
        fail(f"'{field}' must be a JSON Pointer: '' or a string starting with '/'", 400)
    if re.search(r"~(?![01])", text):
        fail(f"'{field}' has an invalid escape: '~' must be followed by 0 or 1", 400)
    return [token.replace("~1", "/").replace("~0", "~") for token in text.split("/")[1:]]


def _walk(doc: Any, tokens: list[str], fail: Fail) -> Any:
    """The value the tokens point at; a missing member or index fails with 422."""
    node = doc
    for depth, token in enumerate(tokens):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and _ARRAY_INDEX.fullmatch(token) and int(token) < len(node):
            node = node[int(token)]
        else:
            fail(f"'{_show(tokens[:depth + 1])}' does not exist", 422, tokens[:depth + 1])
    return node


def _json_add(doc: Any, tokens: list[str], value: Any, fail: Fail) -> Any:
    if not tokens:
        return value
    parent, last = _walk(doc, tokens[:-1], fail), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list) and last == "-":
        parent.append(value)
    elif isinstance(parent, list) and _ARRAY_INDEX.fullmatch(last) and int(last) <= len(parent):
        parent.insert(int(last), value)
    else:
        fail(f"cannot add at '{_show(tokens)}': no such object member or array position", 422, tokens)
    return doc


def _json_remove(doc: Any, tokens: list[str], fail: Fail) -> tuple[Any, Any]:
    """The document without the value at `tokens`, and that value."""
    if not tokens:
        fail("the resource itself cannot be removed", 400, tokens)
    _walk(doc, tokens, fail)
    parent = _walk(doc, tokens[:-1], fail)
    return doc, parent.pop(int(tokens[-1]) if isinstance(parent, list) else tokens[-1])


def _json_replace(doc: Any, tokens: list[str], value: Any, fail: Fail) -> Any:
    if not tokens:
        return value
    _walk(doc, tokens, fail)
    parent = _walk(doc, tokens[:-1], fail)
    parent[int(tokens[-1]) if isinstance(parent, list) else tokens[-1]] = value
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    """RFC 6902 equality: same JSON type and value (so 10 != "10" and true != 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _show(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _pointer_expression(resource: Any, tokens: list[str] | None) -> str | None:
    """The FHIRPath form of a pointer, for the OperationOutcome: /name/0/given -> Patient.name[0].given."""
    if tokens is None or not isinstance(resource, dict):
        return None
    path = str(resource.get("resourceType", "Resource"))
    for token in tokens:
        path += f"[{token}]" if _ARRAY_INDEX.fullmatch(token) else f".{token}"
    return path


def _changed_identity(before: dict, after: Any) -> str | None:
    """Which of resourceType and id the patch changed, if any (a patch must leave both as they were)."""
    for key in ("resourceType", "id"):
        if not isinstance(after, dict) or before.get(key) != after.get(key):
            return key
    return None


# ---------------------------------------------------------------- FHIR Patch (Parameters)

_FHIR_OPS = {
    "add": ("path", "name", "value"),
    "insert": ("path", "value", "index"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}


def apply_fhir_patch(resource: dict, parameters: dict, repeats: Repeats | None = None) -> dict:
    """Apply a FHIR Patch (a Parameters resource of `operation` parameters); return the patched copy.

    `repeats(element)` says whether an element, named by its definition path
    (`Patient.identifier`, `HumanName.given`, `Patient.contact.telecom`), may repeat; it
    decides whether adding an absent element creates a list. The default reads the packaged
    R4 element model (ihs.fhir.structure).
    """
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise FhirError("a FHIR Patch document must be a Parameters resource", 400, code="structure")
    if not isinstance(parameters.get("parameter", []), list):
        raise FhirError("Parameters.parameter must be a list", 400, code="structure")
    doc = copy.deepcopy(resource)
    for index, parameter in enumerate(parameters.get("parameter", [])):
        operation = _Operation.parse(index, parameter)
        operation.apply(doc, repeats or _r4_repeats)
        _prune(doc)
        if changed := _changed_identity(resource, doc):
            operation.fail(f"a patch must not change the resource's {changed}", 400,
                           expression=f"{resource.get('resourceType')}.{changed}")
    return doc


def _r4_repeats(element: str) -> bool:
    """Whether an R4 element may repeat, from the packaged element model."""
    type_key, _, name = element.rpartition(".")
    model = structure.models().get(type_key)
    found = model.elements.get(name) if model else None
    return bool(found and found[1])  # element tuples are (kind, many, ...)


def _prune(obj: dict) -> None:
    """Drop the objects and arrays a delete left empty: FHIR JSON has none (`contact: [{}]` is invalid)."""
    for key, value in list(obj.items()):
        if isinstance(value, dict):
            _prune(value)
        elif isinstance(value, list) and not key.startswith("_"):  # `_x` companions keep their positions
            for item in value:
                if isinstance(item, dict):
                    _prune(item)
            value[:] = [item for item in value if item != {}]
        if value == {} or value == []:
            del obj[key]


@dataclass
class _Value:
    """A value taken from a Parameters part: the data, its `_value[x]` companion, its type suffix."""

    data: Any
    companion: Any = None
    suffix: str | None = None


@dataclass(frozen=True)
class _Node:
    """One selected element: `parent[key]` (or `parent[key][index]`), of declared element `element`."""

    parent: dict | None  # None for the resource itself
    key: str
    index: int | None
    value: Any
    element: str  # definition path, e.g. "HumanName.given"
    type_path: str  # where the model describes the value's children, e.g. "HumanName"
    choice: str | None = None  # "value" when key is a choice variant such as "valueQuantity"


@dataclass
class _Operation:
    index: int
    type: str
    path: str
    parts: dict[str, dict]

    @classmethod
    def parse(cls, index: int, parameter: Any) -> _Operation:
        """Read one `operation` parameter, rejecting malformed ones with 400."""
        where = f"Parameters.parameter[{index}]"

        def malformed(message: str) -> NoReturn:
            raise FhirError(f"FHIR Patch operation {index}: {message}", 400,
                            code="structure", expression=where)

        if not isinstance(parameter, dict) or parameter.get("name") != "operation":
            malformed("every parameter of a FHIR Patch must be named 'operation'")
        parts: dict[str, dict] = {}
        for part in parameter.get("part") or []:
            name = part.get("name") if isinstance(part, dict) else None
            if not isinstance(name, str) or name in parts:
                malformed("each part needs a name, used once")
            parts[name] = part
        kind = _primitive(parts, "type", ("valueCode", "valueString"), str, malformed)
        if kind not in _FHIR_OPS:
            malformed(f"type must be one of {', '.join(_FHIR_OPS)}")
        for required in _FHIR_OPS[kind]:
            if required not in parts:
                malformed(f"a '{kind}' operation needs a '{required}' part")
        path = _primitive(parts, "path", ("valueString",), str, malformed)
        return cls(index, kind, path.strip(), parts)

    def fail(self, message: str, status: int = 422, *, expression: str | None = None) -> NoReturn:
        raise FhirError(f"FHIR Patch operation {self.index} ({self.type} {self.path}): {message}", status,
                        code="processing" if status == 422 else "invalid",
                        expression=expression or self.path)

    def integer(self, name: str) -> int:
        return _primitive(self.parts, name, ("valueInteger",), int, lambda m: self.fail(m, 400))

    def value(self, type_path: str, repeats: Repeats) -> _Value:
        return _part_value(self.parts["value"], type_path, repeats, lambda m: self.fail(m, 400))

    def apply(self, doc: dict, repeats: Repeats) -> None:
        """Apply this operation to `doc` in place."""
        steps = _parse_path(self.path, lambda m: self.fail(m, 400))
        nodes = _select(doc, steps, self.fail)
        getattr(self, "_" + self.type)(doc, steps, nodes, repeats)

    def _add(self, doc: dict, steps: list[tuple], nodes: list[_Node], repeats: Repeats) -> None:
        target = self.single(nodes, "adding")
        name = _primitive(self.parts, "name", ("valueString",), str, lambda m: self.fail(m, 400))
        if target.parent is None and name in ("resourceType", "id"):
            self.fail(f"a patch must not change the resource's {name}", 400,
                      expression=f"{doc.get('resourceType')}.{name}")
        if not isinstance(target.value, dict):
            self.fail(f"the element at {self.path} is a primitive; it cannot have a child '{name}'")
        value = self.value(_declared_type(f"{target.type_path}.{name}"), repeats)
        _add_child(target.value, target.type_path, name, value, repeats, self.fail)

    def _insert(self, doc: dict, steps: list[tuple], nodes: list[_Node], repeats: Repeats) -> None:
        field, element = self.list_at(doc, steps, nodes, repeats)
        index = self.integer("index")
        if not 0 <= index <= len(field.items()):
            self.fail(f"index {index} is outside the list of {len(field.items())} elements")
        field.insert(index, self.value(_declared_type(element), repeats))

    def _delete(self, doc: dict, steps: list[tuple], nodes: list[_Node], repeats: Repeats) -> None:
        if not nodes:
            return  # deleting what is not there is not an error
        target = self.single(nodes, "deleting")
        if target.parent is None:
            self.fail("the resource itself cannot be deleted", 400)
        _Field(target.parent, target.key).delete(target.index)

    def _replace(self, doc: dict, steps: list[tuple], nodes: list[_Node], repeats: Repeats) -> None:
        target = self.single(nodes, "replacing")
        if target.parent is None:
            self.fail("the resource itself cannot be replaced", 400)
        value = self.value(_declared_type(target.element), repeats)
        key = target.choice + value.suffix if target.choice and value.suffix else target.key
        if key != target.key:  # another type of a choice element: valueQuantity -> valueString
            _Field(target.parent, target.key).delete(None)
        _Field(target.parent, key).set(target.index, value)

    def _move(self, doc: dict, steps: list[tuple], nodes: list[_Node], repeats: Repeats) -> None:
        field, _ = self.list_at(doc, steps, nodes, repeats)
        size, source, destination = len(field.items()), self.integer("source"), self.integer("destination")
        if not (0 <= source < size and 0 <= destination < size):
            self.fail(f"source {source} and destination {destination} must be within the list of {size}")
        field.insert(destination, field.pop(source))

    def single(self, nodes: list[_Node], doing: str) -> _Node:
        if not nodes:
            self.fail(f"No content found at {self.path} when {doing}")
        if len(nodes) > 1:
            self.fail(f"{self.path} selects {len(nodes)} elements; {doing} needs exactly one")
        return nodes[0]

    def list_at(self, doc: dict, steps: list[tuple], nodes: list[_Node],
                repeats: Repeats) -> tuple[_Field, str]:
        """The list the path names, and its element path; insert makes an absent list if it may repeat."""
        if nodes:
            first = nodes[0]
            if any(n.index is None or n.parent is not first.parent or n.key != first.key for n in nodes):
                self.fail(f"{self.path} is not a list")
            return _Field(first.parent, first.key), first.element
        parents = _select(doc, steps[:-1], self.fail) if steps and steps[-1][0] == "name" else []
        if self.type != "insert" or len(parents) != 1 or not isinstance(parents[0].value, dict):
            self.fail(f"No content found at {self.path}")
        element = f"{parents[0].type_path}.{steps[-1][1]}"
        if not repeats(element):
            self.fail(f"{self.path} is not a list: {element} does not repeat")
        return _Field(parents[0].value, steps[-1][1]), element


def _primitive(parts: dict[str, dict], name: str, keys: tuple[str, ...], kind: type, fail: Fail) -> Any:
    part = parts.get(name, {})
    for key in keys:
        value = part.get(key)
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    fail(f"the '{name}' part needs a {' or '.join(keys)}")


def _part_value(part: dict, type_path: str, repeats: Repeats, fail: Fail) -> _Value:
    """The value a part carries: a value[x], a resource, or an anonymous (backbone) type made of parts."""
    for key, data in part.items():
        if key.startswith("value") and key[5:6].isupper():
            return _Value(copy.deepcopy(data), copy.deepcopy(part.get("_" + key)), key[5:])
    if isinstance(part.get("resource"), dict):
        return _Value(copy.deepcopy(part["resource"]))
    if not part.get("part"):
        fail(f"part '{part.get('name')}' has no value")
    built: dict = {}
    for child in part["part"]:
        name = child.get("name") if isinstance(child, dict) else None
        if not isinstance(name, str):
            fail(f"every part inside '{part.get('name')}' needs a name")
        value = _part_value(child, _declared_type(f"{type_path}.{name}"), repeats, fail)
        _add_child(built, type_path, name, value, repeats, fail)
    return _Value(built)


def _add_child(obj: dict, type_path: str, name: str, value: _Value,
               repeats: Repeats, fail: Fail) -> None:
    """Add element `name` to `obj`: appended when it repeats, set when absent, an error otherwise."""
    choices = _CHOICES.get(f"{type_path}.{name}")
    key = name + value.suffix if choices and value.suffix else name
    if choices and any(name + t in obj for t in choices):
        fail(f"'{name}' already has a value; use replace")
    field = _Field(obj, key)
    existing = obj.get(key)
    if isinstance(existing, list):
        field.insert(len(existing), value)
    elif key in obj:
        fail(f"'{name}' already exists and does not repeat; use replace")
    elif not choices and repeats(f"{type_path}.{name}"):
        field.insert(0, value)
    else:
        field.set(None, value)


class _Field:
    """Element `key` of `parent`, kept in step with its `_key` primitive-extension companion."""

    def __init__(self, parent: dict, key: str):
        self.parent, self.key, self.companion_key = parent, key, "_" + key

    def items(self) -> list:
        return self.parent.get(self.key) or []

    def set(self, index: int | None, value: _Value) -> None:
        if index is None:
            self.parent[self.key] = value.data
            self.parent.pop(self.companion_key, None)
            if value.companion is not None:
                self.parent[self.companion_key] = value.companion
        else:
            self.parent[self.key][index] = value.data
            self._companions(value.companion)[index] = value.companion
        self._tidy()

    def insert(self, index: int, value: _Value) -> None:
        self.parent.setdefault(self.key, []).insert(index, value.data)
        companions = self._companions(value.companion)
        companions.insert(index, value.companion)
        del companions[len(self.parent[self.key]):]
        self._tidy()

    def pop(self, index: int) -> _Value:
        data = self.parent[self.key].pop(index)
        companions = self.parent.get(self.companion_key)
        in_step = isinstance(companions, list) and index < len(companions)
        companion = companions.pop(index) if in_step else None
        self._tidy()
        return _Value(data, companion)

    def delete(self, index: int | None) -> None:
        if index is None:
            self.parent.pop(self.key, None)
            self.parent.pop(self.companion_key, None)
        else:
            self.pop(index)

    def _companions(self, wanted: Any) -> list:
        """The `_key` list padded to the list's length (made only when a companion is there or wanted)."""
        companions = self.parent.get(self.companion_key)
        if not isinstance(companions, list):
            if wanted is None:
                return [None] * (len(self.items()) + 1)  # a scratch list: nothing to keep in step
            companions = self.parent[self.companion_key] = []
        companions.extend([None] * (len(self.items()) - len(companions)))
        return companions

    def _tidy(self) -> None:
        # FHIR JSON has no empty arrays and no all-null companion arrays
        if self.parent.get(self.key) == []:
            del self.parent[self.key]
        companions = self.parent.get(self.companion_key)
        if self.key not in self.parent or (isinstance(companions, list) and not any(companions)):
            self.parent.pop(self.companion_key, None)


# ---------------------------------------------------------------- FHIR Patch paths

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|`[^`]+`")
_INDEXER = re.compile(r"\[\s*(\d+)\s*\]")
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _parse_path(path: str, fail: Fail) -> list[tuple]:
    """Steps of a FHIR Patch path: ("name", n), ("index", i), ("where", expr), ("first",), ("last",),
    ("ofType", type), ("extension", url)."""
    steps: list[tuple] = []
    pos = 0
    while True:
        match = _NAME.match(path, pos)
        if not match:
            fail(f"cannot read the path at position {pos}: expected an element or function name")
        name, pos = match.group().strip("`"), match.end()
        if path.startswith("(", pos):
            end = _closing_paren(path, pos, fail)
            steps.append(_function_step(name, path[pos + 1:end].strip(), fail))
            pos = end + 1
        else:
            steps.append(("name", name))
        while match := _INDEXER.match(path, pos):
            steps.append(("index", int(match.group(1))))
            pos = match.end()
        if pos == len(path):
            return steps
        if path[pos] != ".":
            fail(f"cannot read the path at position {pos}: expected '.', '[' or the end")
        pos += 1


def _closing_paren(path: str, start: int, fail: Fail) -> int:
    depth, pos = 0, start
    while pos < len(path):
        char = path[pos]
        if char in "'`":
            end = path.find(char, pos + 1)
            while end > 0 and path[end - 1] == "\\":
                end = path.find(char, end + 1)
            if end < 0:
                break
            pos = end
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    fail(f"unbalanced parentheses or quotes after position {start}")


def _function_step(name: str, argument: str, fail: Fail) -> tuple:
    if name == "where" and argument:
        return ("where", argument)
    if name in ("first", "last") and not argument:
        return (name,)
    if name == "ofType" and _NAME.fullmatch(argument):
        return ("ofType", argument.strip("`"))
    if name == "extension" and (url := _STRING.fullmatch(argument)):
        return ("extension", re.sub(r"\\(.)", r"\1", url.group(1)))
    if name == "resolve":
        fail("FHIR Patch paths must not cross resources with resolve()")
    fail(f"{name}({argument}) is not supported in FHIR Patch paths "
         "(use names, [n], where(...), first(), last(), ofType(T), extension('url'))")


def _select(doc: dict, steps: list[tuple], fail: Fail) -> list[_Node]:
    """The elements of `doc` that the path steps select, in document order."""
    resource_type = doc.get("resourceType", "Resource")
    nodes = [_Node(None, "", None, doc, resource_type, resource_type)]
    if steps and steps[0] == ("name", resource_type):
        steps = steps[1:]
    for step in steps:
        kind = step[0]
        if kind == "name":
            nodes = [child for node in nodes for child in _children(node, step[1])]
        elif kind == "index":
            nodes = nodes[step[1]:step[1] + 1]
        elif kind == "first" or kind == "last":
            nodes = nodes[:1] if kind == "first" else nodes[-1:]
        elif kind == "where":
            nodes = [node for node in nodes if _matches(node, step[1], doc, fail)]
        elif kind == "ofType":
            nodes = [node for node in nodes if _is_type(node, step[1])]
        else:
            nodes = [child for node in nodes for child in _children(node, "extension")
                     if isinstance(child.value, dict) and child.value.get("url") == step[1]]
    return nodes


def _children(node: _Node, name: str) -> list[_Node]:
    obj = node.value
    if not isinstance(obj, dict):
        return []
    key = name
    if f"{node.type_path}.{name}" in _CHOICES:  # `value` names whichever of valueQuantity, valueString...
        choice = name
        key = next((name + t for t in _CHOICES[f"{node.type_path}.{name}"] if name + t in obj), "")
    else:
        choice = _choice_base(node.type_path, name)
    if key not in obj:
        return []
    value, element = obj[key], f"{node.type_path}.{choice or name}"
    type_path = f"{node.type_path}.{key}"
    if isinstance(value, list):
        return [_Node(obj, key, i, item, element, _declared_type(type_path, item))
                for i, item in enumerate(value)]
    return [_Node(obj, key, None, value, element, _declared_type(type_path, value), choice)]


def _choice_base(type_path: str, key: str) -> str | None:
    """`value` for key `valueQuantity` when `value[x]` is a choice element of `type_path`."""
    for cut, char in enumerate(key):
        if cut and char.isupper() and key[cut:] in _CHOICES.get(f"{type_path}.{key[:cut]}", ()):
            return key[:cut]
    return None


def _declared_type(element: str, value: Any = None) -> str:
    """The model path that describes an element's children: a type name, or the element itself when
    it is a backbone element; a contained resource is described by its own resourceType."""
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return value["resourceType"]
    element = _MODEL["pathsDefinedElsewhere"].get(element, element)
    declared = _MODEL["path2Type"].get(element)
    return element if declared in (None, "BackboneElement", "Element") else declared


def _is_type(node: _Node, name: str) -> bool:
    actual = node.type_path.removeprefix("System.")
    if "." in actual:
        actual = "BackboneElement"
    return name in (actual, actual[:1].upper() + actual[1:])


def _matches(node: _Node, expression: str, doc: dict, fail: Fail) -> bool:
    """Whether where(expression) keeps this element, evaluated by fhirpathpy with the R4 model."""
    try:
        result = fhirpathpy.evaluate(node.value, {"base": node.type_path, "expression": expression},
                                     {"resource": doc, "rootResource": doc}, _MODEL)
    except Exception as exc:  # fhirpathpy raises plain Exceptions for unknown functions and bad operands
        fail(f"cannot evaluate where({expression}): {exc}", 400)
    return result == [True]
