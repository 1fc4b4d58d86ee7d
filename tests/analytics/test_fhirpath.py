"""The FHIRPath compiler of views: typed navigation, dates, three-valued logic, functions, errors."""
from __future__ import annotations

import pytest

from ihs.analytics.fhirpath import Env, FhirPathError, compile_path
from ihs.analytics.fhirpath_parser import FhirPathSyntaxError

OBSERVATION = {
    "resourceType": "Observation", "id": "o1", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}, {"system": "urn:x", "code": "sbp"}]},
    "subject": {"reference": "http://example.org/fhir/Patient/p1/_history/3"},
    "effectiveDateTime": "2015-02-07T13:28:17.239+02:00",
    "valueQuantity": {"value": 1.50, "unit": "mmHg"},
    "component": [{"valueQuantity": {"value": 80}}, {"valueString": "n/a"}],
}


def evaluate(expression: str, resource: dict = OBSERVATION, constants: dict | None = None, **kwargs):
    compiled = compile_path(expression, resource["resourceType"], constants, **kwargs)
    return compiled.run([resource], Env(resource))


@pytest.mark.parametrize("expression, expected", [
    ("value.ofType(Quantity).value", [1.5]),
    ("value.unit", ["mmHg"]),
    ("component.value.ofType(Quantity).value", [80]),
    ("component.value.ofType(string)", ["n/a"]),
    ("component.value.ofType(integer)", []),
    ("code.coding.where(system = 'urn:x').code", ["sbp"]),
    ("code.coding.code.join('|')", ["8480-6|sbp"]),
    ("code.coding[1].code", ["sbp"]),
    ("code.coding.count()", [2]),
    ("Observation.status", ["final"]),
    ("subject.getReferenceKey()", ["p1"]),
    ("subject.getReferenceKey(Patient)", ["p1"]),
    ("subject.getReferenceKey(Group)", []),
    ("getResourceKey()", ["o1"]),
    ("7 div 2", [3]), ("-7 div 2", [-3]), ("7 mod 2", [1]), ("7 / 2", [3.5]), ("1 / 0", []),
    ("'a' + 'b'", ["ab"]), ("'a' & {}", ["a"]),
    ("status.upper()", ["FINAL"]), ("status.substring(1, 2)", ["in"]), ("status.startsWith('fi')", [True]),
    ("iif(status = 'final', 'done', 'open')", ["done"]),
    ("(1 | 2 | 2).count()", [2]),
    ("2 in (1 | 2)", [True]),
])
def test_expressions(expression, expected):
    assert evaluate(expression) == expected


@pytest.mark.parametrize("expression, expected", [
    ("effective.ofType(dateTime) = @2015-02-07T11:28:17.239Z", [True]),  # the same instant in another zone
    ("effective.ofType(dateTime) > @2015-02-07", []),  # different precisions that agree: unknown
    ("effective.ofType(dateTime) > @2015-02-06", [True]),
    ("@2012-04 < @2012-05-01", [True]),
    ("@T10:00 < @T09:59:59", [False]),
])
def test_dates_compare_as_dates(expression, expected):
    assert evaluate(expression) == expected


@pytest.mark.parametrize("expression, expected", [
    ("{} and false", [False]), ("{} and true", []), ("{} or true", [True]), ("{} or false", []),
    ("true xor {}", []), ("false implies {}", [True]), ("(status = 'x').not()", [True]),
])
def test_logic_is_three_valued(expression, expected):
    assert evaluate(expression) == expected


@pytest.mark.parametrize("expression, expected", [
    ("value.ofType(Quantity).value.lowBoundary()", [1.45]),
    ("value.ofType(Quantity).value.highBoundary()", [1.55]),
    ("effective.ofType(dateTime).lowBoundary()", ["2015-02-07T13:28:17.239+02:00"]),
    ("@2020-02.highBoundary()", ["2020-02-29"]),
    ("@2020-02-03T10.lowBoundary()", ["2020-02-03T10:00:00.000+14:00"]),
])
def test_boundaries(expression, expected):
    assert evaluate(expression) == expected


def test_constants_are_typed_by_their_value_element():
    constants = {"when": ("2015-02-07", "date"), "n": (1, "integer")}
    assert evaluate("effective.ofType(dateTime) > %when", constants=constants) == []
    assert evaluate("code.coding[%n].code", constants=constants) == ["sbp"]


@pytest.mark.parametrize("expression", ["@@", "name.", "where(", "1 +", "'open"])
def test_syntax_errors(expression):
    with pytest.raises(FhirPathSyntaxError):
        compile_path(expression, "Patient")


def test_unknown_function_and_constant_are_errors_before_any_resource_is_read():
    with pytest.raises(FhirPathError, match="resolve"):
        compile_path("subject.resolve()", "Observation")
    with pytest.raises(FhirPathError, match="%missing"):
        compile_path("%missing", "Observation")


def test_comparing_a_collection_is_an_error():
    with pytest.raises(FhirPathError):
        evaluate("code.coding.code > 'a'")
