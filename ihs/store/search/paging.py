"""The statement of one page of rids, for the planned (run.py) and the cached (prepared.py) search alike.

Ordinarily one WHERE holding every test, ordered and limited (`LIMIT count + 1 OFFSET n`). When a
test drives, no `_sort` orders and the total is not counted, PostgreSQL's page is staged: the
driven candidates are sorted in page order in a subquery (its OFFSET 0 keeps the planner from
merging it into the outer query), and the other tests are probed on them in that order until the
page is full. A page of 51 then probes about as many candidates as it takes to find 51 matches,
where counting them (count(*) OVER ()) or sorting the matches would probe every candidate. SQLite
sorts the outer query's rows again whatever the subquery's order, so it keeps the one WHERE.
"""
from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.sql.util import ClauseAdapter

from ihs.store.search.where import order_by


def counts(driven: bool, probes: list, sort: list, unfiltered: bool, total: str) -> bool:
    """Whether the page statement also counts every match: when every candidate is visited anyway (a
    driving test and nothing to probe, or an ORDER BY of _sort), or the total is asked for and a test
    drives; a walk in index order that stops at a full page does not count."""
    if unfiltered or total == "none":
        return False
    if total in ("accurate", "estimate"):
        return driven or bool(sort)
    return bool(sort) or (driven and not probes)


def page_rids(dialect: str, r, where, probes: list, sort: list, *, counted: bool, limit, offset):
    """SELECT rid [, total] of one page: the rows of `r` matching `where` and every probe, in page order."""
    if probes and not counted and not sort and dialect == "postgresql":
        candidates = (select(r.c.rid, r.c.res_type, r.c.res_id, r.c.last_updated, r.c.deleted).where(where)
                      .order_by(*order_by([], r)).offset(0).subquery("candidates"))
        # the same probes, naming the candidate instead of `r`
        probed = ClauseAdapter(candidates).traverse(and_(*probes))
        return (select(candidates.c.rid).where(probed).order_by(*order_by([], candidates))
                .limit(limit).offset(offset))
    columns = [r.c.rid, func.count().over().label("total")] if counted else [r.c.rid]
    return select(*columns).where(where, *probes).order_by(*order_by(sort, r)).limit(limit).offset(offset)
