"""The derived store of syndromic counts: one row per (visit, syndrome), counted by GROUP BY.

The rows are derived data, an index over Encounters like the search index: `record` replaces an
encounter's rows (so delivering the same change twice changes nothing) and `rebuild` makes them
again from the stored records. They live in the platform's database, in the surveillance
package's own table, so that every API worker sees the same counts; the FHIR records stay the
only source of truth, and counts leave the platform as MeasureReports (ihs.surveillance.reports).
Every visit also has a row under ALL_VISITS, the denominator of "share of visits".
"""
from __future__ import annotations

import threading
from collections import Counter
from datetime import date, timedelta

from sqlalchemy import Column, Index, MetaData, String, Table, and_, delete, func, insert, select

from ihs.store import search
from ihs.store.store import Store
from ihs.surveillance.visits import Visit, gather

ALL_VISITS = "all"
DIMENSIONS = ("district", "facility", "age_band", "sex")

metadata = MetaData()
visit_syndromes = Table(
    "surveillance_visit_syndromes", metadata,
    Column("encounter_id", String(64), primary_key=True),
    Column("syndrome", String(32), primary_key=True),
    Column("day", String(10), nullable=False),  # ISO date, comparable as text on every backend
    Column("district", String(128), nullable=False),
    Column("facility", String(256), nullable=False),
    Column("age_band", String(16), nullable=False),
    Column("sex", String(16), nullable=False),
    Index("ix_surveillance_syndrome_day", "syndrome", "day"),
)
_ready: set[int] = set()
_lock = threading.Lock()


def ensure_schema(store: Store) -> None:
    """Create the table on first use (once per engine)."""
    with _lock:
        if id(store.engine) not in _ready:
            metadata.create_all(store.engine)
            _ready.add(id(store.engine))


def _writer(store: Store):
    ensure_schema(store)
    return store.engine.connect().execution_options(ihs_write=True)


def record(store: Store, encounter_id: str, visit: Visit | None) -> None:
    """Make the rows of one encounter say `visit` (no rows when None: deleted or not a visit)."""
    record_many(store, [(encounter_id, visit)])


def record_many(store: Store, visits: list[tuple[str, Visit | None]]) -> None:
    """`record` for many encounters in one transaction."""
    ids = [encounter_id for encounter_id, _ in visits]
    rows = [row for encounter_id, visit in visits if visit is not None for row in _rows(encounter_id, visit)]
    with _writer(store) as conn, conn.begin():
        for start in range(0, len(ids), 500):
            conn.execute(delete(visit_syndromes).where(visit_syndromes.c.encounter_id.in_(ids[start:start + 500])))
        if rows:
            conn.execute(insert(visit_syndromes), rows)


def _rows(encounter_id: str, visit: Visit) -> list[dict]:
    common = {"encounter_id": encounter_id, "day": visit.day.isoformat(), "district": visit.district[:128],
              "facility": visit.facility[:256], "age_band": visit.age_band, "sex": visit.sex}
    return [{**common, "syndrome": code} for code in (ALL_VISITS, *visit.syndromes)]


def refresh(store: Store, encounter_id: str) -> Visit | None:
    """Classify the encounter as stored now and record it; returns what was recorded."""
    with store.session() as uow:
        visit = gather(uow, encounter_id)
    record(store, encounter_id, visit)
    return visit


def clear(store: Store) -> None:
    with _writer(store) as conn, conn.begin():
        conn.execute(delete(visit_syndromes))


def rebuild(store: Store, *, page: int = 500) -> int:
    """Recount every stored Encounter from scratch; returns how many visits were counted."""
    clear(store)
    counted, offset = 0, 0
    while True:
        with store.session() as uow:
            result = search.search(uow, "Encounter", [("_count", str(page)), ("_offset", str(offset)),
                                                      ("_total", "none")])
            visits = [(stored.id, gather(uow, stored.id)) for stored in result.matches]
        record_many(store, visits)
        counted += sum(visit is not None for _, visit in visits)
        if not result.has_next:
            return counted
        offset += page


def daily_counts(store: Store, syndrome: str, start: date, end: date, *, by: str | None = None,
                 **filters: str) -> dict[tuple[date, str | None], int]:
    """Visits per (day, value of `by`) with the syndrome, start..end inclusive; filters narrow the rows.

    `by` and the filter names are DIMENSIONS (district, facility, age_band, sex).
    """
    for name in [by, *filters] if by else list(filters):
        if name not in DIMENSIONS:
            raise ValueError(f"unknown dimension {name!r}; use one of {', '.join(DIMENSIONS)}")
    ensure_schema(store)
    c = visit_syndromes.c
    conditions = [c.syndrome == syndrome, c.day >= start.isoformat(), c.day <= end.isoformat()]
    conditions += [c[name] == value for name, value in filters.items() if value is not None]
    group = [c.day] + ([c[by]] if by else [])
    statement = select(*group, func.count()).where(and_(*conditions)).group_by(*group)
    with store.engine.connect() as conn:
        rows = conn.execute(statement).all()
    return {(date.fromisoformat(row[0]), row[1] if by else None): row[-1] for row in rows}


def series(store: Store, syndrome: str, start: date, end: date, **filters: str) -> list[int]:
    """The daily counts start..end inclusive as a list, zero on days without visits."""
    counts = Counter({day: n for (day, _), n in daily_counts(store, syndrome, start, end, **filters).items()})
    return [counts[start + timedelta(days=i)] for i in range((end - start).days + 1)]


def values_of(store: Store, dimension: str, start: date, end: date) -> list[str]:
    """The values a dimension takes among the visits start..end (e.g. every district seen)."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    ensure_schema(store)
    c = visit_syndromes.c
    statement = (select(c[dimension]).distinct()
                 .where(c.syndrome == ALL_VISITS, c.day >= start.isoformat(), c.day <= end.isoformat()))
    with store.engine.connect() as conn:
        return sorted(row[0] for row in conn.execute(statement))
