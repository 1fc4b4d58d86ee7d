"""Validate a resource (a JSON dict) against the FHIR R4 (4.0.1) StructureDefinitions.

Checked: the resourceType, unknown elements, cardinality (arrays vs single values, required elements),
primitive formats per the R4 regexes, choice types ([x]: one variant, an allowed type), primitive
extensions (`_birthDate`), References (shape and, for `Type/id`, the allowed target types), contained,
Bundle and Parameters resources (recursively; no nested contained), Narrative, extensions and required
bindings. Invariants (FHIRPath constraints) are not evaluated.

Every problem is reported as one Issue whose `expression` is a FHIRPath to the element
("Patient.name[0].given[1]"); choice elements are named by their JSON name ("Observation.valueQuantity").
"""
from __future__ import annotations

import re

from ihs.fhir.errors import InvalidResource, Issue
from ihs.fhir.structure import (CODED, HINTS, PRIMITIVE, PRIMITIVE_EXT, REFERENCE, RESOURCE, RESOURCE_TYPE,
                                models, resource_types)

__all__ = ["validate", "issues", "resource_types", "MAX_ISSUES"]

MAX_ISSUES = 50

# a Reference.reference: "#id", "Type/id[/_history/vid]", "Type?search" (conditional, in transactions)
# or an absolute URI
_REFERENCE = re.compile(
    r"#(?:[A-Za-z0-9\-.]{1,64})?"
    r"|(?P<type>[A-Za-z]+)(?:/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?|\?\S*)"
    r"|[A-Za-z][A-Za-z0-9+.\-]*:\S+", re.ASCII).fullmatch


def validate(resource: dict) -> None:
    """Raise InvalidResource with one Issue per problem (at most MAX_ISSUES) unless `resource` is valid R4."""
    found = issues(resource)
    if found:
        raise InvalidResource(found)


def issues(resource: dict) -> list[Issue]:
    """The problems `validate` would report, as a list (empty when the resource is valid)."""
    found: list[Issue] = []
    if type(resource) is not dict:
        return [Issue("A resource must be a JSON object", None, "structure")]
    rt = resource.get("resourceType")
    try:
        _resource(resource, rt if type(rt) is str and rt in resource_types() else "Resource", found, False)
    except RecursionError:
        # each JSON level costs two Python frames: far deeper than any real resource nests
        return [Issue("The resource is nested too deeply to validate", None, "structure")]
    return found[:MAX_ISSUES]


def _resource(resource, path: str, found: list, contained: bool) -> None:
    if type(resource) is not dict:
        found.append(Issue(f"Expected a resource (a JSON object with resourceType), got {_kind(resource)}",
                           path, "structure"))
        return
    rt = resource.get("resourceType")
    if type(rt) is not str or rt not in resource_types():
        found.append(Issue(f"Unknown resourceType {rt!r}: expected one of the 146 R4 resource types",
                           path + ".resourceType" if rt is not None else path, "structure"))
        return
    if contained and "contained" in resource:
        found.append(Issue("A contained resource must not contain other resources: move them to the container",
                           path + ".contained", "structure"))
    _object(resource, models()[rt], path, found)


def _object(obj: dict, model, path: str, found: list) -> None:
    if len(found) >= MAX_ISSUES:
        return
    elements = model.elements
    choices = None
    for key, value in obj.items():
        element = elements.get(key)
        if element is None:
            found.append(Issue(f"Unknown element '{key}' in {model.name}", f"{path}.{key}", "structure"))
            continue
        kind, many, type_name, check, codes, url, targets, choice = element
        if choice is not None:
            if choices is None:
                choices = {choice: type_name}
            elif choices.setdefault(choice, type_name) != type_name:
                found.append(Issue(f"Only one {choice}[x] variant is allowed, found {choice}"
                                   f"{choices[choice][0].upper()}{choices[choice][1:]} and {key.lstrip('_')}",
                                   f"{path}.{key}", "structure"))
                continue
        if kind == RESOURCE_TYPE:
            continue
        if many:
            if type(value) is not list:
                found.append(Issue(f"'{key}' repeats: it must be a JSON array", f"{path}.{key}", "structure"))
                continue
            if not value:
                found.append(Issue(f"'{key}' must not be an empty array: leave it out", f"{path}.{key}", "structure"))
                continue
            if kind == PRIMITIVE:
                extensions = obj.get("_" + key)
                for i, item in enumerate(value):
                    if item is None:
                        if type(extensions) is not list or i >= len(extensions) or extensions[i] is None:
                            found.append(Issue(f"null in '{key}' needs an extension at the same index of '_{key}'",
                                               f"{path}.{key}[{i}]", "structure"))
                    elif not check(item):
                        _bad_primitive(item, type_name, f"{path}.{key}[{i}]", found)
                    elif codes is not None and item not in codes:
                        _bad_code(item, url, f"{path}.{key}[{i}]", found)
            elif kind == PRIMITIVE_EXT:
                _primitive_extensions(obj, key, value, check, path, found)
            else:
                for i, item in enumerate(value):
                    _complex(item, kind, key, check, codes, url, targets, f"{path}.{key}[{i}]", found)
        elif type(value) is list:
            found.append(Issue(f"'{key}' does not repeat: it must be a single value, not an array",
                               f"{path}.{key}", "structure"))
        elif kind == PRIMITIVE:
            if not check(value):
                _bad_primitive(value, type_name, f"{path}.{key}", found)
            elif codes is not None and value not in codes:
                _bad_code(value, url, f"{path}.{key}", found)
        elif kind == PRIMITIVE_EXT:
            if type(value) is not dict or not value:
                found.append(Issue(f"'{key}' must be a JSON object with id and/or extension", f"{path}.{key}",
                                   "structure"))
            else:
                _object(value, check, f"{path}.{key}", found)
        else:
            _complex(value, kind, key, check, codes, url, targets, f"{path}.{key}", found)
    for label, keys in model.required:
        for k in keys:
            if k in obj:
                break
        else:
            found.append(Issue(f"Missing required element '{label}' in {model.name}", f"{path}.{label}",
                               "required"))


def _complex(value, kind: int, key: str, model, codes, url, targets, path: str, found: list) -> None:
    if kind == RESOURCE:
        _resource(value, path, found, key == "contained")
        return
    if type(value) is not dict:
        found.append(Issue(f"'{key}' is a {model.name}: expected a JSON object, got {_kind(value)}", path,
                           "structure"))
        return
    if not value:
        found.append(Issue(f"'{key}' must not be an empty object: leave it out", path, "structure"))
        return
    _object(value, model, path, found)
    if kind == REFERENCE:
        _reference(value, targets, path, found)
    elif kind == CODED:
        _coded(value, model.name, codes, url, path, found)


def _primitive_extensions(obj: dict, key: str, value: list, model, path: str, found: list) -> None:
    values = obj.get(key[1:])
    if values is not None and (type(values) is not list or len(values) != len(value)):
        found.append(Issue(f"'{key}' must have as many items as '{key[1:]}'", f"{path}.{key}", "structure"))
        return
    for i, item in enumerate(value):
        if item is None:
            if values is None or values[i] is None:
                found.append(Issue(f"'{key}[{i}]' and '{key[1:]}[{i}]' cannot both be null", f"{path}.{key}[{i}]",
                                   "structure"))
        elif type(item) is not dict or not item:
            found.append(Issue(f"'{key}' items must be JSON objects with id and/or extension", f"{path}.{key}[{i}]",
                               "structure"))
        else:
            _object(item, model, f"{path}.{key}[{i}]", found)


def _reference(value: dict, targets, path: str, found: list) -> None:
    reference = value.get("reference")
    if type(reference) is str and reference:
        match = _REFERENCE(reference)
        if match is None:
            found.append(Issue(f"Invalid reference {reference!r}: expected 'Type/id', 'Type?search', an absolute URL, "
                               "'urn:uuid:...' or '#id'", path + ".reference", "value"))
            return
        target = match["type"]
        if target is not None:
            if target not in resource_types():
                found.append(Issue(f"Invalid reference {reference!r}: {target!r} is not a resource type",
                                   path + ".reference", "value"))
            elif targets is not None and target not in targets:
                found.append(Issue(f"A reference to {target} is not allowed here: expected "
                                   f"{' | '.join(sorted(targets))}", path + ".reference", "value"))
    declared = value.get("type")
    if targets is not None and type(declared) is str and declared in resource_types() and declared not in targets:
        found.append(Issue(f"A reference to {declared} is not allowed here: expected {' | '.join(sorted(targets))}",
                           path + ".type", "value"))


def _coded(value: dict, type_name: str, codes: frozenset, url: str, path: str, found: list) -> None:
    codings = [value] if type_name == "Coding" else value.get("coding")
    if type(codings) is list:
        for coding in codings:
            if type(coding) is dict and (coding.get("system"), coding.get("code")) in codes:
                return
    found.append(Issue(f"A code from the required value set {url} is needed (system and code)", path,
                       "code-invalid"))


def _bad_primitive(value, type_name: str, path: str, found: list) -> None:
    if value is None:
        found.append(Issue(f"null is not a {type_name}: leave the element out", path, "value"))
        return
    shown = value if type(value) is not str or len(value) <= 80 else value[:77] + "..."
    found.append(Issue(f"Invalid {type_name} {shown!r}: expected {HINTS.get(type_name, 'a ' + type_name)}",
                       path, "value"))


def _bad_code(value: str, url: str, path: str, found: list) -> None:
    found.append(Issue(f"Code {value!r} is not in the required value set {url}", path, "code-invalid"))


def _kind(value) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)
