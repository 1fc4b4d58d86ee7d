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
