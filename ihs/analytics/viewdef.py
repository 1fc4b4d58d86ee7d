"""SQL-on-FHIR v2 ViewDefinitions: validated, compiled once, then run over resources to produce rows.

`compile_view(definition)` checks the ViewDefinition (resource, select, column names, unionAll
shapes, constants, every FHIRPath) and returns a `View`; `view.rows(resource)` gives its rows as
tuples in `view.columns` order. The row semantics follow the specification: a select's own columns,
then its nested selects, then its unionAll, each combined by cartesian product; forEach and
forEachOrNull iterate, repeat walks a tree depth-first; `%rowIndex` is the position within the
nearest enclosing iteration.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ihs.analytics.fhirpath import Compiled, Env, FhirPathError, compile_path, resource_types
from ihs.fhir.errors import FhirError

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SELECT_KEYS = {"column", "select", "unionAll", "forEach", "forEachOrNull", "repeat"}
# the FHIR types a column may declare, by the SQL family the materializers map them to
COLUMN_TYPES = {"boolean", "integer", "positiveInt", "unsignedInt", "decimal", "string", "code", "id", "uri", "url",
                "canonical", "oid", "uuid", "markdown", "base64Binary", "date", "dateTime", "instant", "time"}


class ViewError(FhirError):
    """The ViewDefinition is not valid or cannot be run as written (400, naming the element)."""

    def __init__(self, message: str, expression: str | None = None):
        super().__init__(message, 400, code="invalid", expression=expression)


@dataclass
class Column:
    name: str
    path: str
    type: str | None  # the declared type, else the type the path compiles to (None: unknown)
    collection: bool
    compiled: Compiled = field(repr=False)


@dataclass
class Select:
    """One select: its own columns, nested selects, unionAll branches and how it iterates."""

    columns: list[Column]
    selects: list["Select"]
    union: list["Select"]
    for_each: Compiled | None = None
    or_null: bool = False
    repeat: list[Compiled] | None = None

    @property
    def names(self) -> list[str]:
        names = [c.name for c in self.columns]
        for select in self.selects:
            names += select.names
        if self.union:
            names += self.union[0].names
        return names

    def all_columns(self) -> list[Column]:
        found = list(self.columns)
        for select in self.selects:
            found += select.all_columns()
        if self.union:
            found += self.union[0].all_columns()
        return found

    def rows(self, focus: list, env: Env) -> list[tuple]:
        """The rows (tuples of this select's columns) for the focus collection."""
        saved = env.row_index
        if self.for_each is not None:
            foci = self.for_each.run(focus, env)
            iterations = [[item] for item in foci] or ([[]] if self.or_null else [])
        elif self.repeat is not None:
            iterations = [[item] for item in _walk(self.repeat, focus, env)]
        else:
            iterations = None
        out: list[tuple] = []
        for index, current in enumerate(iterations) if iterations is not None else [(saved, focus)]:
            env.row_index = index
            combined = [tuple(_column_value(c, current, env) for c in self.columns)]
            for select in self.selects:
                nested = select.rows(current, env)
                env.row_index = index
                combined = [a + b for a in combined for b in nested]
                if not combined:
                    break
            if self.union and combined:
                branches = []
                for branch in self.union:
                    branches += branch.rows(current, env)
                    env.row_index = index
                combined = [a + b for a in combined for b in branches]
            out += combined
        env.row_index = saved
        return out


def _walk(paths: list[Compiled], focus: list, env: Env) -> list:
    """Every node reachable through `paths`, depth-first, each before its own descendants."""
    found = []
    for item in focus:
        for path in paths:
            for child in path.run([item], env):
                found.append(child)
                found += _walk(paths, [child], env)
    return found


def _column_value(column: Column, focus: list, env: Env):
    values = column.compiled.run(focus, env)
    if column.collection:
        return values
    if len(values) > 1:
        raise ViewError(f"column '{column.name}' ({column.path}) found {len(values)} values; "
                        "set collection: true or narrow the path (first(), where(...))")
    return values[0] if values else None


@dataclass
class View:
    """A compiled ViewDefinition."""

    definition: dict
    resource: str
    name: str | None
    select: Select
    where: list[tuple[str, Compiled]]

    @property
    def columns(self) -> list[Column]:
        return self.select.all_columns()

    @property
    def column_names(self) -> list[str]:
        return self.select.names

    def rows(self, resource: dict) -> list[tuple]:
        """The view's rows for one resource (none when it is of another type or fails a where)."""
        if resource.get("resourceType") != self.resource:
            return []
        env = Env(resource)
        focus = [resource]
        for path, condition in self.where:
            result = condition.run(focus, env)
            if not result:
                return []
            if len(result) > 1 or not isinstance(result[0], bool):
                raise ViewError(f"where path '{path}' must give a boolean, but gave {result[:3]!r}")
            if not result[0]:
                return []
        return self.select.rows(focus, env)

    def dicts(self, resource: dict) -> list[dict]:
        names = self.column_names
        return [dict(zip(names, row)) for row in self.rows(resource)]


# ---------------------------------------------------------------------------- compiling

def compile_view(definition) -> View:
    """Validate and compile a ViewDefinition (a dict); ViewError names what is wrong."""
    if not isinstance(definition, dict) or not definition:
        raise ViewError("a ViewDefinition must be a JSON object with 'resource' and 'select'")
    resource = definition.get("resource")
    if not isinstance(resource, str) or not resource:
        raise ViewError("the ViewDefinition names no resource type", "ViewDefinition.resource")
    if resource not in resource_types():
        raise ViewError(f"'{resource}' is not an R4 resource type", "ViewDefinition.resource")
    constants = _constants(definition.get("constant", []))
    compiler = _Compiler(resource, constants)
    top = {"select": definition.get("select")}
    if not isinstance(top["select"], list) or not top["select"]:
        raise ViewError("a ViewDefinition needs a non-empty select list", "ViewDefinition.select")
    select = compiler.select(top, resource, "ViewDefinition")
    names = select.names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ViewError(f"column names must be unique; repeated: {', '.join(duplicates)}", "ViewDefinition.select")
    where = []
    for i, clause in enumerate(_list(definition.get("where", []), "ViewDefinition.where")):
        location = f"ViewDefinition.where[{i}].path"
        path = clause.get("path") if isinstance(clause, dict) else None
        compiled = compiler.path(path, resource, location)
        if compiled.type not in (None, "boolean"):
            raise ViewError(f"where path '{path}' gives {compiled.type} values, not a boolean", location)
        where.append((path, compiled))
    name = definition.get("name")
    return View(definition, resource, name if isinstance(name, str) else None, select, where)


def _list(value, location: str) -> list:
    if not isinstance(value, list):
        raise ViewError(f"{location} must be a list", location)
    return value


def _constants(declared) -> dict:
    constants = {}
    for i, constant in enumerate(_list(declared, "ViewDefinition.constant")):
        location = f"ViewDefinition.constant[{i}]"
        name = constant.get("name") if isinstance(constant, dict) else None
        if not isinstance(name, str) or not NAME.match(name):
            raise ViewError("a constant needs a name (letters, digits, _)", location)
        values = [(k, v) for k, v in constant.items() if k.startswith("value")]
        if len(values) != 1:
            raise ViewError(f"constant '{name}' needs exactly one value[x] (valueString, valueInteger, ...)", location)
        key, value = values[0]
        suffix = key[5:]
        type_name = suffix[0].lower() + suffix[1:] if suffix else "string"
        constants[name] = (value, type_name)
    return constants


class _Compiler:
    def __init__(self, resource: str, constants: dict):
        self.resource = resource
        self.constants = constants

    def path(self, text, focus_type: str | None, location: str) -> Compiled:
        if not isinstance(text, str) or not text.strip():
            raise ViewError("a FHIRPath expression (a non-empty string) is required", location)
        try:
            return compile_path(text, self.resource, self.constants, focus_type=focus_type)
        except FhirPathError as exc:
            raise ViewError(str(exc), location) from None
        except FhirError as exc:
            raise ViewError(str(exc), location) from None

    def select(self, spec, focus_type: str | None, location: str) -> Select:
        if not isinstance(spec, dict):
            raise ViewError("a select must be an object", location)
        unknown = set(spec) - _SELECT_KEYS - {"description"}
        if unknown and location != "ViewDefinition":
            raise ViewError(f"unknown select element(s): {', '.join(sorted(unknown))}", location)
        iterators = [k for k in ("forEach", "forEachOrNull", "repeat") if k in spec]
        if len(iterators) > 1:
            raise ViewError(f"a select takes one of forEach, forEachOrNull, repeat; found {', '.join(iterators)}",
                            location)
        for_each, repeat, inner_type = None, None, focus_type
        if iterators and iterators[0] != "repeat":
            key = iterators[0]
            for_each = self.path(spec[key], focus_type, f"{location}.{key}")
            inner_type = for_each.type
        elif iterators:
            repeat, inner_type = self._repeat(spec["repeat"], focus_type, f"{location}.repeat")
        columns = [self.column(c, inner_type, f"{location}.column[{i}]")
                   for i, c in enumerate(_list(spec.get("column", []), f"{location}.column"))]
        selects = [self.select(s, inner_type, f"{location}.select[{i}]")
                   for i, s in enumerate(_list(spec.get("select", []), f"{location}.select"))]
        union = [self.select(s, inner_type, f"{location}.unionAll[{i}]")
                 for i, s in enumerate(_list(spec.get("unionAll", []), f"{location}.unionAll"))]
        if union:
            shapes = {tuple(branch.names) for branch in union}
            if len(shapes) > 1:
                raise ViewError("every unionAll branch must have the same columns in the same order; found "
                                + " vs ".join("(" + ", ".join(s) + ")" for s in sorted(shapes)), f"{location}.unionAll")
        return Select(columns, selects, union, for_each, iterators[:1] == ["forEachOrNull"], repeat)

    def _repeat(self, paths, focus_type: str | None, location: str):
        if not isinstance(paths, list) or not paths:
            raise ViewError("repeat takes a non-empty list of FHIRPath expressions", location)
        first = [self.path(p, focus_type, f"{location}[{i}]") for i, p in enumerate(paths)]
        types = {c.type for c in first}
        if len(types) == 1 and None not in types:
            # the same paths are walked again from the nodes they reach, so they must type the same from there
            again = [self.path(p, types.pop(), f"{location}[{i}]") for i, p in enumerate(paths)]
            if {c.type for c in again} == {first[0].type}:
                return again, first[0].type
        return [self.path(p, None, f"{location}[{i}]") for i, p in enumerate(paths)], None

    def column(self, spec, focus_type: str | None, location: str) -> Column:
        if not isinstance(spec, dict):
            raise ViewError("a column must be an object with name and path", location)
        name = spec.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise ViewError(f"column name {name!r} must start with a letter and hold only letters, digits and _",
                            f"{location}.name")
        compiled = self.path(spec.get("path"), focus_type, f"{location}.path")
        declared = spec.get("type")
        if declared is not None and not isinstance(declared, str):
            raise ViewError("a column type is a FHIR type name", f"{location}.type")
        collection = spec.get("collection", False)
        if not isinstance(collection, bool):
            raise ViewError("collection must be true or false", f"{location}.collection")
        return Column(name, spec["path"], declared or compiled.type, collection, compiled)
