"""Search value syntax (https://hl7.org/fhir/R4/search.html#escaping, #number, #date, #quantity)."""
from __future__ import annotations

import pytest

from ihs.store.search import values as v


def test_commas_split_alternatives_unless_escaped():
    assert v.split_unescaped(r"a,b\,c,d", ",") == ["a", r"b\,c", "d"]
    assert v.unescape(r"b\,c\$d\|e\\f") == r"b,c$d|e\f"


@pytest.mark.parametrize("text, low, high", [
    ("100", 99.5, 100.5),
    ("100.00", 99.995, 100.005),
    ("1e2", 50, 150),
    ("0.25", 0.245, 0.255),
])
def test_number_precision_is_implied_by_how_it_is_written(text, low, high):
    number = v.parse_number(text)
    assert number.low == pytest.approx(low) and number.high == pytest.approx(high)


def test_prefixes_are_read_before_numbers_and_dates():
    assert v.parse_number("ge5.4").prefix == "ge"
    assert v.parse_date("sa2020").prefix == "sa"
    assert v.parse_number("5.4").prefix == "eq"
    with pytest.raises(v.BadValue):
        v.parse_number("xx5")


def test_date_precision_sets_the_range():
    day = v.parse_date("2020-03-15")
    assert day.high - day.low == 86_400_000_000
    second = v.parse_date("2020-03-15T10:00:00Z")
    assert second.high - second.low == 1_000_000
    assert v.parse_date("2020-03-15T10:00:00+08:00").low == v.parse_date("2020-03-15T02:00:00Z").low


def test_tokens():
    assert v.parse_token("http://loinc.org|8867-4") == v.Token("http://loinc.org", "8867-4")
    assert v.parse_token("|8867-4") == v.Token("", "8867-4")
    assert v.parse_token("http://loinc.org|") == v.Token("http://loinc.org", None)
    assert v.parse_token(r"a\|b") == v.Token(None, "a|b")


def test_quantities():
    q = v.parse_quantity("lt5.4|http://unitsofmeasure.org|mg")
    assert (q.number.prefix, q.number.value, q.system, q.code) == ("lt", 5.4, "http://unitsofmeasure.org", "mg")
    canonical, unit = q.canonical()
    assert unit == "g" and canonical.value == pytest.approx(0.0054)
    assert v.parse_quantity("5.4||mg").system is None
    with pytest.raises(v.BadValue):
        v.parse_quantity("5.4|mg")


def test_references():
    assert v.parse_reference("Patient/123") == v.Reference("Patient", "123", None)
    assert v.parse_reference("Patient/123/_history/2") == v.Reference("Patient", "123", None)
    assert v.parse_reference("123") == v.Reference(None, "123", None)
    assert v.parse_reference("http://x.org/fhir/Patient/1") == v.Reference(None, None, "http://x.org/fhir/Patient/1")
    assert v.parse_reference("http://me/fhir/Patient/1", "http://me/fhir") == v.Reference("Patient", "1", None)
