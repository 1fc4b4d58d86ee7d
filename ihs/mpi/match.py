"""Patient/$match (http://hl7.org/fhir/R4/patient-operation-match.html): the people a Patient may be.

The input Patient is scored against the index's records (never a scan: blocking finds the
candidates); each person is answered once, as their golden record when they have one, ordered by
score. `search.score` is the match probability and the match-grade extension says certain,
probable or possible; `onlyCertainMatches` keeps the certain ones, `count` caps the number.
"""
from __future__ import annotations

from dataclasses import dataclass

from ihs.fhir.errors import FhirError
from ihs.fhir.validation import validate
from ihs.mpi.engine import POSSIBLE
from ihs.mpi.index import MasterPatientIndex, PersonMatch
from ihs.store.store import UnitOfWork

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
DEFAULT_COUNT = 10
MAX_COUNT = 100


@dataclass(frozen=True)
class MatchRequest:
    patient: dict
    only_certain: bool = False
    count: int = DEFAULT_COUNT


def parse_request(body) -> MatchRequest:
    """The operation's input: a Parameters resource (resource, onlyCertainMatches, count) or a bare Patient."""
    if isinstance(body, dict) and body.get("resourceType") == "Patient":
        return MatchRequest(_checked(body))
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError("$match takes a Parameters resource with a Patient in 'resource'", expression="Parameters")
    patient, only_certain, count = None, False, DEFAULT_COUNT
    for i, parameter in enumerate(body.get("parameter") or []):
        name = parameter.get("name")
        where = f"Parameters.parameter[{i}]"
        if name == "resource":
            patient = parameter.get("resource")
        elif name == "onlyCertainMatches":
            if not isinstance(parameter.get("valueBoolean"), bool):
                raise FhirError("onlyCertainMatches takes valueBoolean", expression=f"{where}.valueBoolean")
            only_certain = parameter["valueBoolean"]
        elif name == "count":
            count = parameter.get("valueInteger")
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise FhirError("count takes a positive valueInteger", expression=f"{where}.valueInteger")
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise FhirError("the 'resource' parameter must hold a Patient", code="required",
                        expression="Parameters.parameter.resource")
    return MatchRequest(_checked(patient), only_certain, min(count, MAX_COUNT))


def _checked(patient: dict) -> dict:
    validate(patient)
    return patient


def find_matches(uow: UnitOfWork, index: MasterPatientIndex, request: MatchRequest) -> list[tuple[PersonMatch, dict]]:
    """The matching people, best first, with the Patient to answer for each (golden record or record)."""
    index.sync(uow)
    found = []
    for person in index.match_people(request.patient, minimum=POSSIBLE):
        if request.only_certain and person.best.grade != "certain":
            continue
        stored = uow.current("Patient", person.person_id)
        if stored is None or stored.deleted:
            continue
        found.append((person, stored.resource()))
        if len(found) >= request.count:
            break
    return found


def match_bundle(matches: list[tuple[PersonMatch, dict]], base: str) -> dict:
    """The searchset Bundle $match answers (empty when nothing matches)."""
    entries = [{
        "fullUrl": f"{base}/Patient/{resource['id']}",
        "resource": resource,
        "search": {"extension": [{"url": MATCH_GRADE, "valueCode": person.best.grade}],
                   "mode": "match", "score": round(person.best.probability, 6)},
    } for person, resource in matches]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return bundle
