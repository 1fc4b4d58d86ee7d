"""The export engine and its jobs, below HTTP: levels, policy narrowing, cancellation, owners, the CLI helper."""
from __future__ import annotations

import time
import uuid

import orjson
import pytest
from sqlalchemy import insert, select, update

from ihs.analytics import commands
from ihs.analytics.bulk import Cancelled, ExportRequest, export
from ihs.analytics.jobs import MAX_RUNS, ExportJobs, ensure_schema, export_files, export_jobs
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


def test_jobs_belong_to_their_owner_and_serve_their_files(store):
    _seed(store)
    jobs = ExportJobs(store)
    job = jobs.start(ExportRequest(types=["Patient"]), request_url="http://x/$export", owner="client-a")
    jobs.wait(job)
    state = jobs.state(job, "client-a")
    assert state["status"] == "complete" and state["files"] == [{"type": "Patient", "path": "Patient.ndjson",
                                                                  "count": 2}]
    lines = b"".join(jobs.file(job, "Patient.ndjson", "client-a")).splitlines()
    assert sorted(orjson.loads(line)["resourceType"] for line in lines) == ["Patient", "Patient"]
    with pytest.raises(NotFound):
        jobs.state(job, "client-b")
    with pytest.raises(NotFound):
        jobs.file(job, "../job.json", "client-a")
    jobs.cancel(job, "client-a")
    with pytest.raises(NotFound):
        jobs.state(job, "client-a")


def test_another_worker_answers_for_a_job_it_did_not_start(store):
    _seed(store)
    kicked_off_here, polled_there = ExportJobs(store), ExportJobs(store)
    job = kicked_off_here.start(ExportRequest(types=["Organization"]), request_url="u", owner="client-a")
    polled_there.wait(job)  # no thread of its own: it watches the job's row
    assert job not in polled_there.threads
    assert polled_there.state(job, "client-a")["status"] == "complete"
    assert orjson.loads(b"".join(polled_there.file(job, "Organization.ndjson", "client-a")))["name"] == \
        "Community health centre"


def test_a_job_whose_worker_stopped_is_taken_over_by_the_worker_polling_it(store):
    job = uuid.uuid4().hex
    _seed(store)
    ensure_schema(store)
    with store.engine.connect().execution_options(ihs_write=True) as conn, conn.begin():
        conn.execute(insert(export_jobs).values(  # what a worker that died mid-export leaves behind
            id=job, owner="client-a", status="in-progress", cancelled=False,
            request=orjson.dumps({"types": ["Patient"]}).decode(), request_url="u", progress="1/1 types",
            created=0, runner="gone", lease_until=1, runs=1))
    survivor = ExportJobs(store)
    assert survivor.state(job, "client-a")["status"] == "in-progress"
    survivor.wait(job)
    state = survivor.state(job, "client-a")
    assert state["status"] == "complete" and state["runs"] == 2 and state["runner"] != "gone"
    assert len(b"".join(survivor.file(job, "Patient.ndjson", "client-a")).splitlines()) == 2


def test_a_job_that_keeps_stopping_is_reported_as_failed(store):
    job = uuid.uuid4().hex
    ensure_schema(store)
    with store.engine.connect().execution_options(ihs_write=True) as conn, conn.begin():
        conn.execute(insert(export_jobs).values(
            id=job, owner=None, status="in-progress", cancelled=False, request="{}", request_url="u",
            progress="queued", created=0, runner="gone", lease_until=1, runs=MAX_RUNS))
    state = ExportJobs(store).state(job, None)
    assert state["status"] == "error" and "kick it off again" in state["error"]


def test_a_run_that_lost_its_job_to_another_worker_does_not_finish_it(store):
    job = uuid.uuid4().hex
    _seed(store)
    jobs = ExportJobs(store)
    ensure_schema(store)
    with store.engine.connect().execution_options(ihs_write=True) as conn, conn.begin():
        conn.execute(insert(export_jobs).values(  # another worker claimed the job from this run
            id=job, owner=None, status="in-progress", cancelled=False, request="{}", request_url="u",
            progress="restarted", created=0, runner="someone-else", lease_until=2 ** 62, runs=2))
    jobs._launch(job, "this-run", ExportRequest(types=["Patient"]))
    jobs.wait(job)
    with store.engine.connect() as conn:
        row = conn.execute(select(export_jobs).where(export_jobs.c.id == job)).mappings().one()
        leftovers = conn.execute(select(export_files.c.name).where(export_files.c.job_id == job)).all()
    assert row["status"] == "in-progress" and row["runner"] == "someone-else" and leftovers == []


def test_a_failing_job_reports_its_error(store):
    jobs = ExportJobs(store)
    job = jobs.start(ExportRequest(level="group", group_id="missing"), request_url="u", owner=None)
    jobs.wait(job)
    state = jobs.state(job, None)
    assert state["status"] == "error" and state["status_code"] == 404 and "Group/missing" in state["error"]


def test_since_lists_deleted_resources_as_bundles_of_delete_requests(store, tmp_path):
    people = _seed(store)
    with store.session() as uow:
        observations = [o.id for o in uow.history("Observation", count=10)[0]]
    since = time.time_ns() // 1000
    with store.session(write=True) as uow:
        uow.delete(uow.current("Patient", people["male"]))
        uow.delete(uow.current("Observation", observations[0]))
    result = export(store, ExportRequest(since=since, types=["Patient", "Observation", "Organization"]), tmp_path)
    assert result.files == []
    gone = {}
    for item in result.deleted:
        assert item.type == "Bundle"
        for bundle in _lines(item.path):
            assert bundle["type"] == "transaction"
            gone.update({e["request"]["url"]: e["request"]["method"] for e in bundle["entry"]})
    assert gone == {f"Patient/{people['male']}": "DELETE", f"Observation/{observations[0]}": "DELETE"}
    assert export(store, ExportRequest(types=["Patient"]), tmp_path / "full").deleted == []


def test_deletions_follow_the_compartment_and_the_policy(store, tmp_path):
    people = _seed(store)
    since = time.time_ns() // 1000
    with store.session(write=True) as uow:
        for observation in uow.history("Observation", count=10)[0]:
            uow.delete(uow.current("Observation", observation.id))
        group = uow.create({"resourceType": "Group", "type": "person", "actual": True,
                            "member": [{"entity": {"reference": f"Patient/{people['female']}"}}]})
    narrowed = ExportRequest(since=since, types=["Observation"],
                             allowed={"Observation": [[("category", "laboratory")]]})
    [file] = export(store, narrowed, tmp_path / "policy").deleted
    [bundle] = _lines(file.path)
    assert len(bundle["entry"]) == 1  # the laboratory result, the male patient's
    grouped = ExportRequest(level="group", group_id=group.id, since=since, types=["Observation"])
    [file] = export(store, grouped, tmp_path / "group").deleted
    [bundle] = _lines(file.path)
    assert len(bundle["entry"]) == 1  # the female member's vital signs only


def test_group_since_carries_the_whole_record_of_patients_who_joined_after_it(store, tmp_path):
    people = _seed(store)
    with store.session(write=True) as uow:
        group = uow.create({"resourceType": "Group", "type": "person", "actual": True,
                            "member": [{"entity": {"reference": f"Patient/{people['female']}"}}]})
    since = time.time_ns() // 1000
    with store.session(write=True) as uow:
        resource = group.resource()
        resource["member"].append({"entity": {"reference": f"Patient/{people['male']}"}})
        uow.update(resource, uow.current("Group", group.id))
        uow.create({"resourceType": "Observation", "status": "final", "code": {"text": "new"},
                    "subject": {"reference": f"Patient/{people['female']}"}})
    request = ExportRequest(level="group", group_id=group.id, since=since, types=["Patient", "Observation"])
    files = {f.type: _lines(f.path) for f in export(store, request, tmp_path).files}
    assert [p["id"] for p in files["Patient"]] == [people["male"]]  # the newcomer, though unchanged since
    subjects = sorted((o["subject"]["reference"], o["code"]["text"]) for o in files["Observation"])
    assert subjects == sorted([(f"Patient/{people['male']}", "x"), (f"Patient/{people['female']}", "new")])


def test_the_cli_helper_exports_with_a_since_instant(store, tmp_path):
    _seed(store)
    result = commands.export(store, tmp_path, types=["Organization"], since="2000-01-01", show_progress=False)
    assert [(f.type, f.count) for f in result.files] == [("Organization", 1)]
    with pytest.raises(FhirError):
        commands.export(store, tmp_path, since="last week", show_progress=False)
