"""Syndromic counts as FHIR: one summary MeasureReport per day, stratified on request."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from ihs.store.store import Store
from ihs.surveillance import counts
from ihs.surveillance.alerts import SYNDROME
from ihs.surveillance.syndromes import syndrome as syndrome_named

MEASURE_BASE = "https://ihs.example.org/fhir/Measure/syndrome-"
POPULATION = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population",
                          "code": "initial-population", "display": "Initial Population"}]}
MAX_DAYS = 366 * 6


def daily_reports(store: Store, code: str, start: date, end: date, *, by: str | None = None,
                  **filters: str) -> dict:
    """A collection Bundle of MeasureReports, one per day start..end, counting the syndrome's visits."""
    s = syndrome_named(code)
    if end < start or (end - start).days >= MAX_DAYS:
        raise ValueError(f"the period must run forwards and cover at most {MAX_DAYS} days")
    totals = counts.daily_counts(store, code, start, end, **filters)
    strata = counts.daily_counts(store, code, start, end, by=by, **filters) if by else {}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        group = {"code": {"coding": [{"system": SYNDROME, "code": s.code, "display": s.name}], "text": s.chinese},
                 "population": [{"code": POPULATION, "count": totals.get((day, None), 0)}]}
        if by:
            group["stratifier"] = [{"code": [{"text": by}], "stratum": [
                {"value": {"text": value}, "population": [{"code": POPULATION, "count": n}]}
                for (d, value), n in sorted(strata.items(), key=lambda item: str(item[0][1])) if d == day]}]
        report = {"resourceType": "MeasureReport", "status": "complete", "type": "summary",
                  "measure": f"{MEASURE_BASE}{s.code}", "date": now,
                  "period": {"start": day.isoformat(), "end": day.isoformat()}, "group": [group]}
        entries.append({"resource": report})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": now, "entry": entries}
