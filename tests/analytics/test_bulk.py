"""The export engine and its jobs, below HTTP: levels, policy narrowing, cancellation, owners, the CLI helper."""
from __future__ import annotations

import orjson
import pytest

from ihs.analytics import commands
from ihs.analytics.bulk import Cancelled, ExportRequest, export
from ihs.analytics.jobs import ExportJobs
from ihs.fhir.errors import FhirError, NotFound

CATEGORIES = "http://terminology.hl7.org/CodeSystem/observation-category"


def _seed(store) -> dict:
    with store.session(write=True) as uow:
        female = uow.create({"resourceType": "Patient", "gender": "female"}).id
        male = uow.create({"resourceType": "Patient", "gender": "male"}).id
        for patient, category in ((female, "vital-signs"), (male, "laboratory")):
            uow.create({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                        "category": [{"coding": [{"system": CATEGORIES, "code": category}]}],
                        "subject": {"reference": f"Patient/{patient}"}})
        uow.create({"resourceType": "Organization", "name": "Community health centre"})
    return {"female": female, "male": male}


def _lines(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_policy_narrowing_is_and_ed_with_type_filters(store, tmp_path):
    people = _seed(store)
    request = ExportRequest(allowed={"Patient": [[("gender", "female")]], "Observation": None},
                            type_filters=["Observation?category=laboratory", "Observation?category=vital-signs"])
    files = {f.type: f for f in export(store, request, tmp_path).files}
    assert set(files) == {"Patient", "Observation"}  # Organization is not allowed at all
    assert [p["id"] for p in _lines(files["Patient"].path)] == [people["female"]]
    assert files["Observation"].count == 2


def test_types_outside_the_patient_compartment_are_refused_at_patient_level():
    with pytest.raises(FhirError, match="Organization"):
        ExportRequest(level="patient", types=["Organization"]).check()


def test_a_cancelled_export_stops(store, tmp_path):
    _seed(store)
    with pytest.raises(Cancelled):
        export(store, ExportRequest(), tmp_path, cancelled=lambda: True)


def test_jobs_belong_to_their_owner_and_serve_their_files(store, tmp_path):
    _seed(store)
    jobs = ExportJobs(store, tmp_path / "exports")
    job = jobs.start(ExportRequest(types=["Patient"]), request_url="http://x/$export", owner="client-a")
    jobs.wait(job)
    state = jobs.state(job, "client-a")
    assert state["status"] == "complete" and state["files"] == [{"type": "Patient", "path": "Patient.ndjson",
                                                                  "count": 2}]
    assert jobs.file(job, "Patient.ndjson", "client-a").exists()
    with pytest.raises(NotFound):
        jobs.state(job, "client-b")
    with pytest.raises(NotFound):
        jobs.file(job, "../job.json", "client-a")
    jobs.cancel(job, "client-a")
    assert not (tmp_path / "exports" / job).exists()


def test_a_failing_job_reports_its_error(store, tmp_path):
    jobs = ExportJobs(store, tmp_path / "exports")
    job = jobs.start(ExportRequest(level="group", group_id="missing"), request_url="u", owner=None)
    jobs.wait(job)
    state = jobs.state(job, None)
    assert state["status"] == "error" and state["status_code"] == 404 and "Group/missing" in state["error"]


def test_the_cli_helper_exports_with_a_since_instant(store, tmp_path):
    _seed(store)
    result = commands.export(store, tmp_path, types=["Organization"], since="2000-01-01", show_progress=False)
    assert [(f.type, f.count) for f in result.files] == [("Organization", 1)]
    with pytest.raises(FhirError):
        commands.export(store, tmp_path, since="last week", show_progress=False)
