"""Linking: after a Patient changes, give its record the right golden record.

- a certain match joins the matched person's golden record (one is made for an unlinked match);
- otherwise the record keeps or gets a golden record of its own, and each probable match opens a
  review Task for a data steward;
- a link a steward made (`manual`) is kept; a golden record left without sources is retired
  (inactive), pointing with `replaced-by` to where its record went.

Every write is skipped when the stored version already says the same, so linking a record again
for the same change (events are delivered at least once) writes nothing.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ihs.mpi import golden as goldens
from ihs.mpi import review
from ihs.mpi.engine import PROBABLE
from ihs.mpi.features import GOLDEN_TAG, is_golden, is_merged
from ihs.mpi.index import MasterPatientIndex, golden_id_of
from ihs.store.store import StoredResource, UnitOfWork

MAX_REVIEWS = 3  # review Tasks opened per record at most


@dataclass
class Decision:
    """What linking did for one record."""

    record_id: str
    action: str  # linked | own | unchanged | removed | skipped
    golden_id: str | None = None
    reviews: list[str] = field(default_factory=list)  # candidate ids a review Task was opened for


_UNREAD = object()


class Linker:
    """Links records within one unit of work.

    Each Patient is read from the store once per unit of work and then taken from what was read or
    written, so a batch of registrations costs one read per record touched, and writes stay
    buffered for the store's bulk append instead of being flushed by every re-read. Golden records
    are rebuilt by `finish()`, which must run before the unit of work commits.
    """

    def __init__(self, uow: UnitOfWork, index: MasterPatientIndex):
        self.uow = uow
        self.index = index
        self._current: dict[str, StoredResource | None] = {}
        # golden records to rebuild (with where a retired one points), written once by `finish`
        self._stale: dict[str, str | None] = {}

    # -- the current versions this unit of work has seen -----------------------------------------

    def current(self, patient_id: str) -> StoredResource | None:
        stored = self._current.get(patient_id, _UNREAD)
        if stored is _UNREAD:
            stored = self._current[patient_id] = self.uow.current("Patient", patient_id)
        return stored

    def read(self, patient_ids: list[str]) -> None:
        """Read the current versions of these Patients in one query (a batch's records, before linking them)."""
        unread = [patient_id for patient_id in patient_ids if patient_id not in self._current]
        found = self.uow.currents("Patient", unread)
        for patient_id in unread:
            self._current[patient_id] = found.get(patient_id)

    def _save(self, resource: dict, *, relinked: bool = False) -> StoredResource | None:
        """Write `resource` unless its current version already says the same; index the new version
        (`relinked`: only its refer link changed)."""
        saved = goldens.save(self.uow, resource, self.current(resource["id"]))
        if saved is not None:
            self.index.apply(saved, written=True, relinked=relinked)
            if saved.rid:
                self._current[saved.id] = saved
            else:  # a new resource gets its row id when written: read it back if it changes again
                self._current.pop(saved.id, None)
        return saved

    # -- decisions -------------------------------------------------------------------------------

    def link(self, record_id: str) -> Decision:
        """Match the current version of Patient/`record_id` and set its links and golden record."""
        uow, index = self.uow, self.index
        stored = self.current(record_id)
        if stored is None:
            return Decision(record_id, "skipped")
        previous = index.golden_of.get(record_id)
        index.apply(stored)
        if stored.deleted or is_merged(stored.resource()):
            if previous:
                self.refresh_golden(previous)
            return Decision(record_id, "removed", previous)
        patient = stored.resource()
        if is_golden(patient):
            return Decision(record_id, "skipped")
        current = golden_id_of(patient)
        if current and goldens.link_assurance(patient) == "manual":
            self.refresh_golden(current)
            return Decision(record_id, "unchanged", current)
        # only probable and certain matches lead to a link or a review
        people = [p for p in index.match_people(patient, minimum=PROBABLE) if p.person_id != record_id]
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
                golden_id = self._new_golden_id()
                joining.append(chosen.best.id)
            action = "unchanged" if golden_id == current else "linked"
        elif current and index.members(current) == [record_id]:
            golden_id, action = current, "unchanged"
        else:
            golden_id, action = self._new_golden_id(), "own"
        self.attach(joining, golden_id)
        if current and current != golden_id:
            self.refresh_golden(current, moved_to=golden_id)
        decision = Decision(record_id, action, golden_id)
        for person in people:
            if (person.best.grade == "probable" and person.person_id != golden_id
                    and len(decision.reviews) < MAX_REVIEWS):
                if review.open_review(uow, record_id, person.person_id, person.best.probability, tasks):
                    decision.reviews.append(person.person_id)
        return decision

    def _new_golden_id(self) -> str:
        golden_id = str(uuid.uuid4())
        self._current[golden_id] = None  # a fresh uuid: nothing to read
        return golden_id

    def attach(self, record_ids: list[str], golden_id: str, assurance: str = "auto") -> None:
        """Point source records at `golden_id` and rebuild that golden record once."""
        newest = 0
        for record_id in record_ids:
            stored = self.current(record_id)
            patient = stored.resource()
            if golden_id_of(patient) != golden_id or goldens.link_assurance(patient) != assurance:
                # the features indexed stay right when they were read from the version being relinked
                relinked = self.index.versions.get(record_id) == stored.version
                linked = self._save(goldens.with_link(patient, golden_id, assurance), relinked=relinked)
                if linked is not None:
                    stored = linked
            newest = max(newest, stored.last_updated)
        golden = self.current(golden_id)
        # a golden record written after its records' current versions, naming them, already reflects them
        fresh = golden is not None and not golden.deleted and golden.last_updated > newest and all(
            f'"Patient/{record_id}"' in golden.content for record_id in record_ids)
        if not fresh:
            self.refresh_golden(golden_id)

    def refresh_golden(self, golden_id: str, *, moved_to: str | None = None) -> None:
        """Have a golden record rebuilt from its sources by `finish` (retired when none is left)."""
        self._stale[golden_id] = moved_to or self._stale.get(golden_id)

    def finish(self) -> None:
        """Write the golden records the decisions changed, each once however many of its records changed.

        A golden record is built from its sources' current versions only, so writing it at the end
        of the unit of work gives the same record as rewriting it after every decision."""
        while self._stale:
            golden_id = next(iter(self._stale))
            self._rebuild(golden_id, self._stale.pop(golden_id))

    def _rebuild(self, golden_id: str, moved_to: str | None) -> None:
        sources = []
        for member in self.index.members(golden_id):
            stored = self.current(member)
            if stored is not None and not stored.deleted:
                sources.append(stored.resource())
        if sources:
            self._save(goldens.golden_resource(golden_id, sources))
        else:
            self._retire(golden_id, moved_to)

    def _retire(self, golden_id: str, moved_to: str | None) -> None:
        current = self.current(golden_id)
        if current is None or current.deleted:
            return
        retired = {k: v for k, v in current.resource().items() if k not in ("link", "active")}
        retired["meta"] = {"tag": [dict(GOLDEN_TAG)]}
        retired["active"] = False
        if moved_to:
            retired["link"] = [{"other": {"reference": f"Patient/{moved_to}"}, "type": "replaced-by"}]
        self._save(retired)

    def confirm(self, record_id: str, candidate_id: str) -> str:
        """A steward's confirmation: link the record by hand to the candidate's person; answers the golden id."""
        index = self.index
        person_id, is_golden_record = index.person_of(candidate_id)
        if candidate_id in index.goldens:
            golden_id = candidate_id
        elif is_golden_record:
            golden_id = person_id
        else:
            golden_id = self._new_golden_id()
            self.attach([candidate_id], golden_id)
        previous = index.golden_of.get(record_id)
        self.attach([record_id], golden_id, assurance="manual")
        if previous and previous != golden_id:
            self.refresh_golden(previous, moved_to=golden_id)
        return golden_id


__all__ = ["Decision", "Linker"]
