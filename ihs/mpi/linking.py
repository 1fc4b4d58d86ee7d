"""Linking: after a Patient changes, give its record the right golden record.

- a certain match joins the matched person's golden record (one is made for an unlinked match);
- otherwise the record keeps or gets a golden record of its own, and each probable match opens a
  review Task for a data steward;
- a link a steward made (`manual`) is kept; a golden record left without sources is retired
  (inactive), pointing with `replaced-by` to where its record went.

Every write is skipped when the stored version already says the same, so running `link_record`
again for the same change (events are delivered at least once) writes nothing.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ihs.mpi import golden as goldens
from ihs.mpi import review
from ihs.mpi.features import GOLDEN_TAG, is_golden, is_merged
from ihs.mpi.index import MasterPatientIndex, golden_id_of
from ihs.store.store import UnitOfWork

MAX_REVIEWS = 3  # review Tasks opened per record at most


@dataclass
class Decision:
    """What linking did for one record."""

    record_id: str
    action: str  # linked | own | unchanged | removed | skipped
    golden_id: str | None = None
    reviews: list[str] = field(default_factory=list)  # candidate ids a review Task was opened for


def link_record(uow: UnitOfWork, index: MasterPatientIndex, record_id: str) -> Decision:
    """Match the current version of Patient/`record_id` and set its links and golden record."""
    stored = uow.current("Patient", record_id)
    if stored is None:
        return Decision(record_id, "skipped")
    previous = index.golden_of.get(record_id)
    index.apply(stored)
    if stored.deleted or is_merged(stored.resource()):
        if previous:
            refresh_golden(uow, index, previous)
        return Decision(record_id, "removed", previous)
    patient = stored.resource()
    if is_golden(patient):
        return Decision(record_id, "skipped")
    current = golden_id_of(patient)
    if current and goldens.link_assurance(patient) == "manual":
        refresh_golden(uow, index, current)
        return Decision(record_id, "unchanged", current)
    people = [p for p in index.match_people(patient) if p.person_id != record_id]
    # a steward's earlier answers matter only when the record could move or a review could open
    settled = bool(people) and people[0].person_id == current and people[0].best.grade == "certain"
    unsure = any(p.best.grade == "probable" for p in people)
    movable = any(p.best.grade == "certain" for p in people) and not settled
    # a review Task is opened in the transaction that links the record, so a first version has none
    asked = stored.version > 1 and (unsure or movable)
    tasks = review.reviews_of(uow, record_id) if asked else []
    rejected = review.rejected_candidates(tasks)
    people = [p for p in people if p.person_id not in rejected]
    certain = [p for p in people if p.best.grade == "certain"]
    joining = [record_id]
    if certain:
        chosen = next((p for p in certain if p.person_id == current), certain[0])
        if chosen.golden:
            golden_id = chosen.person_id
        else:  # an unlinked record: the two get a golden record together
            golden_id = new_golden_id()
            joining.append(chosen.best.id)
        action = "unchanged" if golden_id == current else "linked"
    elif current and index.members(current) == [record_id]:
        golden_id, action = current, "unchanged"
    else:
        golden_id, action = new_golden_id(), "own"
    attach(uow, index, joining, golden_id)
    if current and current != golden_id:
        refresh_golden(uow, index, current, moved_to=golden_id)
    decision = Decision(record_id, action, golden_id)
    for person in people:
        if person.best.grade == "probable" and person.person_id != golden_id and len(decision.reviews) < MAX_REVIEWS:
            if review.open_review(uow, record_id, person.person_id, person.best.probability, tasks):
                decision.reviews.append(person.person_id)
    return decision


def new_golden_id() -> str:
    return str(uuid.uuid4())


def attach(uow: UnitOfWork, index: MasterPatientIndex, record_ids: list[str], golden_id: str,
           assurance: str = "auto") -> None:
    """Point source records at `golden_id` and rebuild that golden record once."""
    newest = 0
    for record_id in record_ids:
        stored = uow.current("Patient", record_id)
        patient = stored.resource()
        if golden_id_of(patient) != golden_id or goldens.link_assurance(patient) != assurance:
            linked = goldens.save(uow, goldens.with_link(patient, golden_id, assurance))
            if linked is not None:
                index.apply(linked)
                stored = linked
        newest = max(newest, stored.last_updated)
    golden = uow.current("Patient", golden_id)
    # a golden record written after its records' current versions, naming them, already reflects them
    fresh = golden is not None and not golden.deleted and golden.last_updated > newest and all(
        f'"Patient/{record_id}"' in golden.content for record_id in record_ids)
    if not fresh:
        refresh_golden(uow, index, golden_id)


def refresh_golden(uow: UnitOfWork, index: MasterPatientIndex, golden_id: str, *, moved_to: str | None = None) -> None:
    """Rebuild a golden record from its sources; retire it when none is left."""
    sources = []
    for member in index.members(golden_id):
        stored = uow.current("Patient", member)
        if stored is not None and not stored.deleted:
            sources.append(stored.resource())
    if sources:
        saved = goldens.save(uow, goldens.golden_resource(golden_id, sources))
    else:
        saved = _retire(uow, golden_id, moved_to)
    if saved is not None:
        index.apply(saved)


def _retire(uow: UnitOfWork, golden_id: str, moved_to: str | None):
    current = uow.current("Patient", golden_id)
    if current is None or current.deleted:
        return None
    retired = {k: v for k, v in current.resource().items() if k not in ("link", "active")}
    retired["meta"] = {"tag": [dict(GOLDEN_TAG)]}
    retired["active"] = False
    if moved_to:
        retired["link"] = [{"other": {"reference": f"Patient/{moved_to}"}, "type": "replaced-by"}]
    return goldens.save(uow, retired)


def confirm(uow: UnitOfWork, index: MasterPatientIndex, record_id: str, candidate_id: str) -> str:
    """A steward's confirmation: link the record by hand to the candidate's person; answers the golden id."""
    person_id, is_golden_record = index.person_of(candidate_id)
    if candidate_id in index.goldens:
        golden_id = candidate_id
    elif is_golden_record:
        golden_id = person_id
    else:
        golden_id = new_golden_id()
        attach(uow, index, [candidate_id], golden_id)
    previous = index.golden_of.get(record_id)
    attach(uow, index, [record_id], golden_id, assurance="manual")
    if previous and previous != golden_id:
        refresh_golden(uow, index, previous, moved_to=golden_id)
    return golden_id


__all__ = ["Decision", "attach", "confirm", "link_record", "refresh_golden"]
