"""The official SQL-on-FHIR v2 test suite (134 cases), run as its runners do, with its test_report.json."""
from __future__ import annotations

import json
import tarfile
from collections import Counter

from ihs.analytics.viewdef import compile_view
from ihs.fhir.errors import FhirError
from tests.shared_data import shared_file

ARCHIVE = "sql-on-fhir-v2-tests.tar.gz"


def suite() -> tuple[dict[str, dict], dict]:
    """The test files by name and the test-report schema, read from the archive in place."""
    files, schema = {}, None
    with tarfile.open(shared_file(ARCHIVE)) as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".json"):
                continue
            data = json.load(tar.extractfile(member))
            if "/tests/" in member.name:
                files[member.name.rsplit("/", 1)[-1]] = data
            elif member.name.endswith("test-report.schema.json"):
                schema = data
    return files, schema


def _canonical(row: dict) -> str:
    """A row as comparable text: key order ignored, 5 and 5.0 the same number."""
    def plain(value):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value
    return json.dumps({k: plain(v) for k, v in row.items()}, sort_keys=True)


def run_case(resources: list[dict], case: dict) -> dict:
    """One case's result in the report's shape: {"passed": bool, "error"?: str}."""
    try:
        view = compile_view(case["view"])
        rows = [row for resource in resources for row in view.dicts(resource)]
    except FhirError as exc:
        if case.get("expectError"):
            return {"passed": True}
        return {"passed": False, "error": f"unexpected error: {exc}"}
    if case.get("expectError"):
        return {"passed": False, "error": f"expected an error, got {len(rows)} rows"}
    if "expectColumns" in case and view.column_names != case["expectColumns"]:
        return {"passed": False, "error": f"columns {view.column_names} != {case['expectColumns']}"}
    expected = case.get("expect", [])
    if Counter(map(_canonical, rows)) != Counter(map(_canonical, expected)):
        return {"passed": False, "error": "rows differ", "details": {"actual": rows, "expected": expected}}
    return {"passed": True}


def run_suite() -> dict:
    files, _ = suite()
    return {name: {"tests": [{"name": case["title"], "result": run_case(data["resources"], case)}
                             for case in data["tests"]]}
            for name, data in sorted(files.items())}


def _check_report_shape(report: dict, schema: dict) -> None:
    """The report against test-report.schema.json (the subset of JSON Schema that file uses)."""
    item_schema = schema["patternProperties"][".*"]["properties"]["tests"]["items"]
    for name, entry in report.items():
        assert set(entry) == {"tests"} and entry["tests"], name
        for test in entry["tests"]:
            assert set(item_schema["required"]) <= set(test)
            assert isinstance(test["name"], str) and isinstance(test["result"]["passed"], bool)
            assert set(test["result"]) <= set(item_schema["properties"]["result"]["properties"])


def test_official_suite_passes_all_134_cases_and_writes_test_report(tmp_path):
    report = run_suite()
    path = tmp_path / "test_report.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    _check_report_shape(json.loads(path.read_text()), suite()[1])
    results = [(file, t["name"], t["result"]) for file, entry in report.items() for t in entry["tests"]]
    failed = [f"{file}: {name}: {result.get('error')}" for file, name, result in results if not result["passed"]]
    assert len(results) == 134
    assert not failed, "\n".join(failed)


def test_rows_come_in_the_order_the_suite_lists_them():
    files, _ = suite()
    data = files["foreach.json"]
    case = next(c for c in data["tests"] if c["title"] == "forEach: normal")
    view = compile_view(case["view"])
    assert [row for r in data["resources"] for row in view.dicts(r)] == case["expect"]
