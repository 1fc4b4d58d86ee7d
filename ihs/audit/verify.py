"""`ihs audit verify`: walk the AuditEvent hash chain and name the first event that breaks it.

Detected: an event modified (its hash no longer matches its content), deleted (a sequence number
missing, or the event gone from the store), re-ordered or swapped (an event's sequence or
predecessor hash not the one its place in the chain expects), truncated (the head names a later
event than the last one found) and events stored outside the chain. Deleting the newest events
together with the head row is only visible against a head hash kept elsewhere: `verify` prints
the head so operators can record it (e.g. daily, in a ticket or a signed log). Read audits still
in a worker's journal (ihs/audit/journal.py) are checked against their journal's own links.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ihs.audit.chain import GENESIS, audit_chain, audit_chain_head, chain_fields, create_audit_schema, event_hash
from ihs.audit.journal import check_journals
from ihs.store.search import find, search

BATCH = 500


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    checked: int  # events verified before the first problem (all of them when ok)
    head_sequence: int
    head_hash: str
    event_id: str | None = None  # the first bad event's id
    sequence: int | None = None  # its place in the chain
    problem: str | None = None

    def report(self) -> str:
        """One line for the operator."""
        if self.ok:
            return (f"audit chain intact: {self.checked} events, head sequence {self.head_sequence} "
                    f"hash {self.head_hash}")
        where = f"AuditEvent/{self.event_id}" if self.event_id else "the chain"
        return f"audit chain BROKEN at {where} (sequence {self.sequence}): {self.problem}"


def verify(store, *, expected_head: str | None = None) -> VerificationResult:
    """Check the whole chain; `expected_head` (a hash recorded earlier) must be on it, if given."""
    create_audit_schema(store.engine)
    with store.session() as uow:
        # counted before the head is read: events appended meanwhile are on the chain, never counted as outside it
        total = search(uow, "AuditEvent", [("_summary", "count"), ("_total", "accurate")]).total or 0
        head = uow.conn.execute(select(audit_chain_head.c.seq, audit_chain_head.c.hash)).first()
        walker = _Walker(head.seq, head.hash, expected_head)
        last = 0
        while True:
            rows = uow.conn.execute(select(audit_chain.c.seq, audit_chain.c.res_id, audit_chain.c.hash)
                                    .where(audit_chain.c.seq > last, audit_chain.c.seq <= head.seq)
                                    .order_by(audit_chain.c.seq).limit(BATCH)).all()
            if not rows:
                break
            found = {s.id: s for s in find(uow, "AuditEvent", [("_id", ",".join(r.res_id for r in rows))],
                                           limit=len(rows))}
            for row in rows:
                result = walker.step(row, found.get(row.res_id))
                if result:
                    return result
            last = rows[-1].seq
        result = walker.finish()
        if result:
            return result
        if total > walker.checked:
            return walker.fail(None, None, f"{total - walker.checked} AuditEvent(s) in the store are not on the chain "
                                           "(written around ihs.audit.record)")
    broken = check_journals(store)  # read audits not on the chain yet
    if broken:
        return walker.fail(None, None, broken)
    return VerificationResult(True, walker.checked, head.seq, head.hash)


class _Walker:
    def __init__(self, head_seq: int, head_hash: str, expected_head: str | None):
        self.head_seq, self.head_hash, self.expected_head = head_seq, head_hash, expected_head
        self.previous = GENESIS
        self.seq = 0
        self.checked = 0
        self.seen_expected = expected_head is None

    def fail(self, event_id, sequence, problem) -> VerificationResult:
        return VerificationResult(False, self.checked, self.head_seq, self.head_hash, event_id, sequence, problem)

    def step(self, row, stored) -> VerificationResult | None:
        if row.seq != self.seq + 1:
            return self.fail(row.res_id, row.seq, f"event(s) {self.seq + 1}..{row.seq - 1} before it were deleted")
        if stored is None or stored.deleted:
            return self.fail(row.res_id, row.seq, "the event was deleted from the store")
        event = stored.resource()
        fields = chain_fields(event)
        if event.get("id") != row.res_id:
            return self.fail(row.res_id, row.seq, f"the stored content is event {event.get('id')}'s (rows swapped)")
        if event_hash(event) != fields.get("hash"):
            return self.fail(row.res_id, row.seq, "the event was modified: its content no longer matches its hash")
        if fields.get("sequence") != row.seq:
            return self.fail(row.res_id, row.seq,
                             f"the event says it is number {fields.get('sequence')} in the chain (re-ordered)")
        if fields.get("previous") != self.previous:
            return self.fail(row.res_id, row.seq,
                             "its predecessor hash does not match the event before it (re-ordered or removed)")
        if row.hash != fields.get("hash"):
            return self.fail(row.res_id, row.seq, "the chain index's hash differs from the event's (index modified)")
        self.previous, self.seq = row.hash, row.seq
        self.checked += 1
        if row.hash == self.expected_head:
            self.seen_expected = True
        return None

    def finish(self) -> VerificationResult | None:
        if self.seq != self.head_seq or self.previous != self.head_hash:
            return self.fail(None, self.seq + 1, f"the chain ends at event {self.seq} but its head names event "
                                                 f"{self.head_seq}: the newest events were deleted")
        if not self.seen_expected:
            return self.fail(None, None,
                             f"the recorded head {self.expected_head} is not on the chain: it was rewritten")
        return None


def verify_command(database_url: str | None = None, expected_head: str | None = None) -> tuple[int, str]:
    """`ihs audit verify`: (exit status, report line) for the configured database."""
    from ihs.store.store import Store

    store = Store(database_url)
    try:
        result = verify(store, expected_head=expected_head)
    finally:
        store.dispose()
    return (0 if result.ok else 1), result.report()
