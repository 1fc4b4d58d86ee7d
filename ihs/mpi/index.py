"""The master patient index of one store: the matcher's records and who is linked to whom.

The index lives in memory (blocking keys, features, links) and is rebuilt from the store when a
process first needs it: every Patient is read once through search, the model from
Binary/mpi-model. Afterwards `sync(uow)` catches up with changes made by any process from the
Patient history since the last look, re-reading `SYNC_MARGIN` before it since a change commits a
little after its timestamp, so answering $match never scans the patients. (A transaction holding
a Patient change uncommitted for longer than the margin reaches this process's index with that
Patient's next change or the next load; the outbox handlers still see it.)
"""
from __future__ import annotations

import base64
import threading
import time
import weakref
from dataclasses import dataclass, field

import orjson

from ihs.fhir.validation import validate
from ihs.mpi.engine import Candidate, Matcher
from ihs.mpi.features import is_golden, is_merged, person
from ihs.mpi.model import Model
from ihs.store import search
from ihs.store.store import Store, StoredResource, UnitOfWork

MODEL_ID = "mpi-model"
# a change may commit this long (microseconds) after its timestamp: each sync re-reads that much history
SYNC_MARGIN = 1_000_000
PAGE = 1000


def golden_id_of(patient: dict) -> str | None:
    """The golden record a source Patient refers to (its link of type refer), if any."""
    for link in patient.get("link") or []:
        ref = (link.get("other") or {}).get("reference") or ""
        if link.get("type") == "refer" and ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


@dataclass(frozen=True)
class PersonMatch:
    """The best-scoring record of one person (a golden record and its sources, or an unlinked record)."""

    person_id: str  # the golden record's id, or the record's own when it is linked to none
    golden: bool
    best: Candidate


@dataclass
class MasterPatientIndex:
    """Records, links and the model of one store, kept in step with it."""

    matcher: Matcher = field(default_factory=Matcher)
    golden_of: dict[str, str] = field(default_factory=dict)  # source id -> golden id
    _members: dict[str, set[str]] = field(default_factory=dict)  # golden id -> source ids
    goldens: set[str] = field(default_factory=set)
    versions: dict[str, int] = field(default_factory=dict)  # Patient id -> version applied
    # Patient id -> the version linking wrote last: its change event needs no matching (nothing but
    # links changed since the version that was matched); lost on restart, when such events are matched again
    written: dict[str, int] = field(default_factory=dict)
    synced_at: int = 0  # when the last sync (or load) began, in microseconds since the epoch
    lock: threading.RLock = field(default_factory=threading.RLock)

    # -- keeping in step with the store --------------------------------------------------------

    def load(self, uow: UnitOfWork) -> None:
        """Read every current Patient and the saved model."""
        with self.lock:
            self.synced_at = _now()
            self.matcher.model = load_model(uow) or self.matcher.model
            offset = 0
            while True:
                result = search.search(uow, "Patient", [("_count", str(PAGE)), ("_offset", str(offset)),
                                                        ("_total", "none")])
                for stored in result.matches:
                    self.apply(stored)
                if not result.has_next:
                    break
                offset += PAGE

    def sync(self, uow: UnitOfWork) -> int:
        """Apply Patient changes since the last sync; answers how many versions were new."""
        with self.lock:
            since = max(0, self.synced_at - SYNC_MARGIN)
            self.synced_at = _now()
            versions, _ = uow.history("Patient", since=since, count=100_000)
            applied = 0
            for stored in reversed(versions):
                if stored.version > self.versions.get(stored.id, 0):
                    current = uow.current("Patient", stored.id)
                    if current is not None and current.version > self.versions.get(stored.id, 0):
                        self.apply(current)
                        applied += 1
            return applied

    def apply(self, stored: StoredResource, *, written: bool = False, relinked: bool = False) -> None:
        """Index one current Patient version (a deletion removes it); `written` when linking wrote it,
        `relinked` when only its refer link differs from the version indexed before."""
        with self.lock:
            self.versions[stored.id] = stored.version
            if written:
                self.written[stored.id] = stored.version
            elif self.written.get(stored.id) != stored.version:
                self.written.pop(stored.id, None)
            relinked = relinked and stored.id in self.matcher.persons
            if not relinked:
                self.matcher.remove(stored.id)
            self.goldens.discard(stored.id)
            previous = self.golden_of.pop(stored.id, None)
            if previous:
                self._members.get(previous, set()).discard(stored.id)
            if stored.deleted:
                return
            patient = stored.resource()
            if is_golden(patient):
                if patient.get("active", True):
                    self.goldens.add(stored.id)
                return
            if is_merged(patient):
                return  # its references now point at the Patient it was merged into
            golden = golden_id_of(patient)
            if golden:
                self.golden_of[stored.id] = golden
                self._members.setdefault(golden, set()).add(stored.id)
            if not relinked:  # the features, read from everything but the links, stay as they are
                self.matcher.add(person(patient))

    # -- questions -----------------------------------------------------------------------------

    def wrote(self, patient_id: str, version: int | None) -> bool:
        """Whether linking wrote this version of the Patient (in a committed unit of work)."""
        return version is not None and self.written.get(patient_id) == version

    def members(self, golden_id: str) -> list[str]:
        """The source records linked to a golden record."""
        with self.lock:
            return sorted(self._members.get(golden_id, ()))

    def person_of(self, record_id: str) -> tuple[str, bool]:
        golden = self.golden_of.get(record_id)
        return (golden, True) if golden else (record_id, False)

    def match_people(self, patient: dict, *, minimum: float = 0.0) -> list[PersonMatch]:
        """People (golden records, or unlinked records) matching `patient`, best first, one entry each."""
        with self.lock:
            candidates = self.matcher.match(person(patient), minimum=minimum)
            best: dict[str, PersonMatch] = {}
            for candidate in candidates:
                person_id, golden = self.person_of(candidate.id)
                if person_id not in best:
                    best[person_id] = PersonMatch(person_id, golden, candidate)
            return list(best.values())


def _now() -> int:
    return time.time_ns() // 1000


_INDEXES: "weakref.WeakKeyDictionary[Store, MasterPatientIndex]" = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def index_for(store: Store) -> MasterPatientIndex:
    """The index of `store`, loaded from it the first time a process asks."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(store)
        if index is None:
            index = MasterPatientIndex()
            with store.session() as uow:
                index.load(uow)
            _INDEXES[store] = index
        return index


def forget(store: Store) -> None:
    """Drop the in-memory index of `store` (the next use loads it again)."""
    with _INDEXES_LOCK:
        _INDEXES.pop(store, None)


def load_model(uow: UnitOfWork) -> Model | None:
    stored = uow.current("Binary", MODEL_ID)
    if stored is None or stored.deleted:
        return None
    return Model.from_json(orjson.loads(base64.b64decode(stored.resource()["data"])))


def save_model(uow: UnitOfWork, model: Model) -> None:
    """Keep the model's parameters as Binary/mpi-model, so every process scores alike."""
    binary = {"resourceType": "Binary", "id": MODEL_ID, "contentType": "application/json",
              "data": base64.b64encode(orjson.dumps(model.to_json())).decode()}
    validate(binary)
    current = uow.current("Binary", MODEL_ID)
    if current is None:
        uow.create(binary)
    else:
        uow.update(binary, current)
