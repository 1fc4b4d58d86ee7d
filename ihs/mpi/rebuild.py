"""Bulk rebuild: re-estimate the model from every Patient and link them all (`ihs mpi rebuild`)."""
from __future__ import annotations

import time
from dataclasses import dataclass

from tqdm import tqdm

from ihs.mpi import linking
from ihs.mpi.index import forget, index_for, save_model
from ihs.store.store import Store

BATCH = 200  # records linked per transaction


@dataclass
class RebuildReport:
    records: int
    candidate_pairs: int
    linked: int
    golden_records: int
    reviews: int
    seconds: float


def rebuild(store: Store, progress: bool = True, *, train: bool = True) -> RebuildReport:
    """Train the model on all source records (EM), save it, then link every record in batches."""
    started = time.perf_counter()
    forget(store)
    index = index_for(store)
    with index.lock:
        pairs = 0
        if train and len(index.matcher) > 1:
            pairs = len(index.matcher.train())
            with store.session(write=True) as uow:
                save_model(uow, index.matcher.model)
        ids = sorted(index.matcher.persons)
        counts = {"linked": 0, "reviews": 0}
        bar = tqdm(total=len(ids), unit="patient", desc="mpi rebuild", disable=not progress)
        try:
            for start in range(0, len(ids), BATCH):
                with store.session(write=True) as uow:
                    index.sync(uow)
                    linker = linking.Linker(uow, index)
                    for record_id in ids[start:start + BATCH]:
                        decision = linker.link(record_id)
                        counts["linked"] += decision.action == "linked"
                        counts["reviews"] += len(decision.reviews)
                    linker.finish()
                bar.update(len(ids[start:start + BATCH]))
        except Exception:
            forget(store)
            raise
        finally:
            bar.close()
        return RebuildReport(len(ids), pairs, counts["linked"], len(index.goldens), counts["reviews"],
                             time.perf_counter() - started)
