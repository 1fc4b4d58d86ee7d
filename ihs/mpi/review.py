"""Review Tasks: a data steward decides whether a probable match is one person.

A probable match opens a Task (code review-match) whose focus is the new record and whose input
names the candidate person and the match probability. The steward completes the Task to confirm
(the record is then linked to the candidate by hand) or rejects it (the pair is never proposed
or linked automatically again).
"""
from __future__ import annotations

from ihs.fhir.validation import validate
from ihs.store import search
from ihs.store.store import UnitOfWork, instant

MPI_CODES = "https://ihs.example.org/fhir/CodeSystem/mpi"
REVIEW = {"system": MPI_CODES, "code": "review-match", "display": "Review a probable patient match"}
CANDIDATE = {"system": MPI_CODES, "code": "candidate", "display": "Candidate person"}
PROBABILITY = {"system": MPI_CODES, "code": "match-probability", "display": "Match probability"}


def reviews_of(uow: UnitOfWork, record_id: str) -> list[dict]:
    """Every review Task about a record."""
    found = search.find(uow, "Task", [("focus", f"Patient/{record_id}"), ("code", f"{MPI_CODES}|review-match")],
                        limit=100)
    return [stored.resource() for stored in found]


def candidate_of(task: dict) -> str | None:
    """The id of the candidate Patient a review Task names."""
    for item in task.get("input") or []:
        if any(c.get("code") == CANDIDATE["code"] for c in (item.get("type") or {}).get("coding", [])):
            return (item.get("valueReference") or {}).get("reference", "").split("/", 1)[-1] or None
    return None


def record_of(task: dict) -> str | None:
    return ((task.get("focus") or {}).get("reference") or "").split("/", 1)[-1] or None


def open_review(uow: UnitOfWork, record_id: str, candidate_id: str, probability: float, existing: list[dict]) -> bool:
    """Open a review Task unless one about this pair exists (in any state); answers whether it did."""
    if any(candidate_of(task) == candidate_id for task in existing):
        return False
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [REVIEW], "text": "Review a probable patient match"},
        "description": f"Are Patient/{record_id} and Patient/{candidate_id} the same person? "
                       f"(match probability {probability:.3f}) Complete this Task to confirm, reject it if not.",
        "focus": {"reference": f"Patient/{record_id}"},
        "for": {"reference": f"Patient/{record_id}"},
        "authoredOn": instant(uow.store.clock.now()),
        "input": [{"type": {"coding": [CANDIDATE]}, "valueReference": {"reference": f"Patient/{candidate_id}"}},
                  {"type": {"coding": [PROBABILITY]}, "valueDecimal": round(probability, 4)}],
    }
    validate(task)
    uow.create(task)
    return True


def rejected_candidates(tasks: list[dict]) -> set[str]:
    """Candidates a steward said are a different person."""
    return {c for task in tasks if task.get("status") == "rejected" and (c := candidate_of(task))}
