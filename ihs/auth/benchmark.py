"""What security costs per request: token check, policy decision, search restriction, audit append.

    python -m ihs.auth.benchmark [--database URL] [--residents 60] [--seconds 2]

Builds the demo region (SQLite in a temporary directory unless --database names an empty
database) with its demo accounts, then times each step on the demo family doctor's requests.
Results are recorded in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import tempfile
import time


from ihs.audit import audit_event, from_principal, record
from ihs.audit.chain import create_audit_schema
from ihs.audit.writer import AuditWriter
from ihs.auth.authority import Authority
from ihs.auth.config import PolicyConfig
from ihs.auth.demo import create_demo_accounts
from ihs.auth.policy import Policy
from ihs.auth.schema import create_auth_schema
from ihs.auth.server import identity
from ihs.auth.accounts import get_user


def _rate(work, seconds: float) -> float:
    """Calls per second of `work()` over about `seconds`."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        work()
        done += 1
    return done / (time.perf_counter() - start)


def demo_store(database: str | None, residents: int):
    """A store holding the demo region (`residents` residents) and its demo accounts."""
    from ihs.api import bundle
    from ihs.demo.generator import generate_region
    from ihs.store.store import Store

    store = Store(database or f"sqlite:///{tempfile.mkdtemp(prefix='ihs-bench-')}/ihs.db")
    store.create_schema()
    create_auth_schema(store.engine)
    create_audit_schema(store.engine)
    for item in generate_region(seed=42, residents=residents):
        bundle.process(store, item)
    create_demo_accounts(store)
    return store


def run(database: str | None = None, residents: int = 60, seconds: float = 2.0) -> list[tuple[str, float, str]]:
    """(measure, value, unit) of each step."""
    from ihs.store.search import find

    store = demo_store(database, residents)
    authority = Authority(store, "http://127.0.0.1:8080")
    with store.engine.connect() as conn:
        user = get_user(conn, "doctor")
    roles, organizations, fhir_user = identity(authority, user)
    token, _claims = authority.access_token(subject="doctor", client_id="bench", scope="user/*.cruds", roles=roles,
                                            organizations=organizations, fhir_user=fhir_user)
    headers = {"authorization": f"Bearer {token}"}
    principal = authority.authenticate(headers)
    cached, uncached = Policy(PolicyConfig()), Policy(PolicyConfig(cache_seconds=0))
    with store.session() as uow:
        related = sorted(cached.search_restriction(principal, "Observation", uow).patient_ids())
        observation = find(uow, "Observation", [("subject", f"Patient/{related[0]}")], limit=1)[0].resource()
        assert cached.decide(principal, "read", "Observation", observation, uow).allowed
        results = [
            ("authenticate (token check, cached signature)", _rate(lambda: authority.authenticate(headers), seconds),
             "calls/s"),
            ("decide read, relationship cached", _rate(lambda: cached.decide(
                principal, "read", "Observation", observation, uow), seconds), "calls/s"),
            ("decide read, nothing cached", _rate(lambda: uncached.decide(
                principal, "read", "Observation", observation, uow), seconds), "calls/s"),
            ("search_restriction, cached", _rate(lambda: cached.search_restriction(
                principal, "Observation", uow), seconds), "calls/s"),
            ("search_restriction, nothing cached", _rate(lambda: uncached.search_restriction(
                principal, "Observation", uow), seconds), "calls/s"),
        ]
    results.append(("patients listed in the doctor's restriction", len(related), "patients"))

    def audited_read():
        with store.session(write=True) as uow:
            record(uow, audit_event("read", **from_principal(principal), resource=f"Observation/{observation['id']}",
                                    patients=(related[0],), server=authority.base_url))

    def plain_write():
        with store.session(write=True) as uow:
            uow.create(audit_event("read", **from_principal(principal), server=authority.base_url))

    results.append(("audit record() in its own transaction", _rate(audited_read, seconds), "events/s"))
    results.append(("same AuditEvent stored without the chain", _rate(plain_write, seconds), "events/s"))
    writer = AuditWriter(store, file_delay=3600)  # filed below, on their own
    results.append(("AuditWriter journal (group commit), 16 threads", _threaded_audit(writer, principal, seconds),
                    "events/s"))
    results.append(("AuditWriter filing journaled events as resources", _filing(writer), "events/s"))
    results.extend(_extraction(principal, authority.base_url, related, seconds))
    store.dispose()
    return results


def _extraction(principal, server: str, patients: list[str], seconds: float) -> list[tuple[str, float, str]]:
    """Index rows of read AuditEvents per second, with the rows of repeated elements remembered and without."""
    from ihs.fhir import indexing

    events = [audit_event("read", **from_principal(principal), resource=f"Observation/o{i}", server=server,
                          patients=(patients[i % len(patients)],)) for i in range(1000)]
    turn = iter(range(10**9))

    def extract():
        indexing.extract(events[next(turn) % len(events)])

    remembering = indexing._MEMO_KEYS
    results = [("index rows of an AuditEvent, repeated elements remembered", _rate(extract, seconds), "events/s")]
    indexing._MEMO_KEYS = {}
    try:
        results.append(("index rows of an AuditEvent, all worked out", _rate(extract, seconds), "events/s"))
    finally:
        indexing._MEMO_KEYS = remembering
    return results


def _filing(writer) -> float:
    """Journaled events chained and stored as indexed AuditEvent resources per second (the filer's work)."""
    waiting = writer.events - writer.filed
    start = time.perf_counter()
    writer.flush(timeout=600)
    return waiting / (time.perf_counter() - start)


def _threaded_audit(writer, principal, seconds: float, threads: int = 16) -> float:
    """AuditEvents per second when `threads` concurrent requests each append theirs through one AuditWriter."""
    import threading

    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def request(i: int) -> None:
        while time.perf_counter() < deadline:
            writer.write(audit_event("search", **from_principal(principal), query="code=8867-4"), checked=True)
            counts[i] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=request, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None)
    parser.add_argument("--residents", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    for name, value, unit in run(args.database, args.residents, args.seconds):
        print(f"{name:48} {value:>12,.0f} {unit}")


if __name__ == "__main__":
    main()
