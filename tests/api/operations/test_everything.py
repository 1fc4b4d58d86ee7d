"""GET Patient/[id]/$everything: one person's records across institutions, through the golden record."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.api.operations.mpi_records import create, fresh_index  # noqa: F401 (autouse fixture)

from ihs.mpi.changes import on_patient_change
from ihs.mpi.idnumber import RESIDENT_ID_SYSTEM




def register(client, store, org: str, name: dict) -> str:
    pid = create(client, {"resourceType": "Patient", "name": [name], "gender": "female", "birthDate": "1948-02-17",
                          "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": "330502194802170026"}],
                          "managingOrganization": {"reference": f"Organization/{org}"}})
    on_patient_change(store, SimpleNamespace(res_type="Patient", res_id=pid, version=1, interaction="create"))
    return pid


def observation(client, pid: str, text: str) -> str:
    return create(client, {"resourceType": "Observation", "status": "final", "code": {"text": text},
                           "subject": {"reference": f"Patient/{pid}"}})


@pytest.fixture
def person(client, store):
    centre = register(client, store, "centre", {"family": "王", "given": ["秀英"]})
    hospital = register(client, store, "hospital", {"family": "Wang", "given": ["Xiuying"]})
    golden = client.get(f"/Patient/{centre}").json()["link"][0]["other"]["reference"].split("/")[1]
    records = [observation(client, centre, "blood pressure"), observation(client, hospital, "HbA1c")]
    encounter = create(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"},
                                "subject": {"reference": f"Patient/{hospital}"}})
    return golden, centre, hospital, records, encounter


def ids(bundle: dict) -> list[tuple[str, str]]:
    return [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle.get("entry", [])]


def test_everything_from_the_golden_record_spans_every_institution(client, person):
    golden, centre, hospital, records, encounter = person
    bundle = client.get(f"/Patient/{golden}/$everything").json()
    found = ids(bundle)
    assert found[0] == ("Patient", golden)
    assert set(found[1:3]) == {("Patient", centre), ("Patient", hospital)}
    assert set(found[3:]) == {("Observation", records[0]), ("Observation", records[1]), ("Encounter", encounter)}
    assert bundle["total"] == 6 and bundle["type"] == "searchset"


def test_everything_from_a_source_record_reaches_the_other_institution(client, person):
    golden, centre, hospital, records, _ = person
    found = ids(client.get(f"/Patient/{centre}/$everything?_type=Observation").json())
    assert found == sorted([("Observation", records[0]), ("Observation", records[1])])


def test_an_unlinked_patient_answers_only_its_own_record(client, person):
    alone = create(client, {"resourceType": "Patient", "name": [{"family": "Zhou"}]})
    mine = observation(client, alone, "pulse")
    assert ids(client.get(f"/Patient/{alone}/$everything").json()) == [("Patient", alone), ("Observation", mine)]


def test_everything_pages_and_names_bad_input(client, person):
    golden = person[0]
    first = client.get(f"/Patient/{golden}/$everything?_count=4").json()
    assert len(first["entry"]) == 4 and first["total"] == 6
    following = [l["url"] for l in first["link"] if l["relation"] == "next"][0]
    second = client.get(following.replace("http://testserver", "")).json()
    assert len(second["entry"]) == 2
    assert client.get("/Patient/nobody/$everything").status_code == 404
    bad_type = client.get(f"/Patient/{golden}/$everything?_type=Organization")
    assert bad_type.status_code == 400 and bad_type.json()["issue"][0]["expression"] == ["_type"]


def dated_record(client, golden_person) -> dict:
    """Care across two institutions in 2019, 2021 and 2023, plus records that carry no care date."""
    golden, centre, hospital, _, _ = golden_person

    def obs(pid, when, text):
        resource = {"resourceType": "Observation", "status": "final", "code": {"text": text},
                    "subject": {"reference": f"Patient/{pid}"}}
        if when:
            resource["effectiveDateTime"] = when
        return create(client, resource)

    def visit(pid, start, end):
        return create(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                               "subject": {"reference": f"Patient/{pid}"}, "period": {"start": start, "end": end}})

    return {
        "obs2019": obs(centre, "2019-06-01T09:00:00+08:00", "weight"),
        "obs2021": obs(hospital, "2021-03-15", "HbA1c"),
        "obs2023": obs(centre, "2023-11-30", "pulse"),
        # a stay from late 2020 into 2021 overlaps a range starting in 2021
        "stay": visit(hospital, "2020-12-28", "2021-01-04"),
        "visit2023": visit(centre, "2023-02-01", "2023-02-01"),
    }


def test_everything_start_and_end_keep_care_in_the_range_and_undated_records(client, person):
    golden, centre, hospital, undated, encounter = person  # the fixture's records carry no care date
    dated = dated_record(client, person)
    found = set(ids(client.get(f"/Patient/{golden}/$everything?start=2021-01-01&end=2022-12-31").json()))
    assert ("Observation", dated["obs2021"]) in found and ("Encounter", dated["stay"]) in found
    assert ("Observation", dated["obs2019"]) not in found and ("Observation", dated["obs2023"]) not in found
    assert ("Encounter", dated["visit2023"]) not in found
    # "resources without a care date are included": the Patients and the undated records
    assert {("Patient", golden), ("Patient", centre), ("Patient", hospital)} <= found
    assert {("Observation", undated[0]), ("Observation", undated[1]), ("Encounter", encounter)} <= found


def test_everything_without_start_takes_all_care_before_end_and_without_end_all_after_start(client, person):
    golden = person[0]
    dated = dated_record(client, person)
    before = set(ids(client.get(f"/Patient/{golden}/$everything?end=2020&_type=Observation").json()))
    assert ("Observation", dated["obs2019"]) in before
    assert not {("Observation", dated["obs2021"]), ("Observation", dated["obs2023"])} & before
    after = set(ids(client.get(f"/Patient/{golden}/$everything?start=2023-01&_type=Observation,Encounter").json()))
    assert {("Observation", dated["obs2023"]), ("Encounter", dated["visit2023"])} <= after
    assert not {("Observation", dated["obs2019"]), ("Observation", dated["obs2021"]), ("Encounter", dated["stay"])} & after


def test_everything_combines_start_with_since_type_and_count(client, person):
    golden = person[0]
    dated_record(client, person)
    bundle = client.get(f"/Patient/{golden}/$everything?start=2021-01-01&_type=Observation&_count=1").json()
    assert bundle["total"] == 4  # 2021 and 2023, and the fixture's two undated Observations
    assert len(bundle["entry"]) == 1 and any(l["relation"] == "next" for l in bundle["link"])
    later = client.get(f"/Patient/{golden}/$everything?_since=2999-01-01T00:00:00Z&start=2021").json()
    assert later["total"] == 0 and "entry" not in later


def test_everything_names_a_malformed_or_reversed_date_range(client, person):
    golden = person[0]
    bad = client.get(f"/Patient/{golden}/$everything?start=last-year")
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["start"]
    assert "YYYY-MM-DD" in bad.json()["issue"][0]["diagnostics"]
    reversed_range = client.get(f"/Patient/{golden}/$everything?start=2023-01-01&end=2021-12-31")
    assert reversed_range.status_code == 400 and "after end" in reversed_range.json()["issue"][0]["diagnostics"]
    assert client.get(f"/Patient/{golden}/$everything?start=2021-05&end=2021").status_code == 200
