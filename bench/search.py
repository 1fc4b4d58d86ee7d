"""Search latency and throughput on >= 1,000,000 resources, on SQLite and PostgreSQL.

    .venv/bin/python bench/search.py build --database sqlite:///ihs-data/bench-search.db [--copies 26]
    .venv/bin/python bench/search.py run --database sqlite:///ihs-data/bench-search.db [--samples 200]
    .venv/bin/python bench/search.py sql --database sqlite:///ihs-data/bench-search.db

`build` replicates the 100-patient Synthea set (38,472 distinct resources) `--copies` times with
fresh ids and identifiers and stores it straight through the store (Store.session + uow.create, a
few thousand resources per transaction, index rows included), then ANALYZEs (PostgreSQL: VACUUM
ANALYZE, as autovacuum would in time). `run` measures a fixed query mix through
`ihs.store.search.search` (parse, SQL, page load, includes; no HTTP): p50/p95 per query, the p50 of
the best hand-written SQL for the same page and their ratio, then the mix run round-robin in this
one process (searches/s and CPU ms per search) and the mix's throughput with one worker process per
core. `sql` prints the SQL each query compiles to and the database's plan for it. Results go in
docs/benchmarks.md ("## Search").
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import statistics
import sys
import tarfile
import time
from pathlib import Path

import orjson
from sqlalchemy import func, select, text
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ihs.store.schema import resources  # noqa: E402
from ihs.store.search import search  # noqa: E402
from ihs.store.store import Store  # noqa: E402

DATA = Path(os.environ.get("IHS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SYNTHEA = DATA / "synthea-r4-bulk-data-server-100p.tar.gz"
BATCH = 2000
_UUID_REF = re.compile(r'"urn:uuid:([0-9a-f\-]{36})"')

# ---------------------------------------------------------------------------- the dataset


def synthea_resources() -> list[dict]:
    """The distinct resources of the Synthea set (organizations and practitioners repeat across bundles)."""
    seen, out = set(), []
    with tarfile.open(SYNTHEA) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".json")),
                         key=lambda m: (0 if "Information" in m.name else 1, m.name))
        for member in members:
            document = orjson.loads(archive.extractfile(member).read())
            for entry in document.get("entry", []):
                resource = entry["resource"]
                key = (resource["resourceType"], resource["id"])
                if key not in seen:
                    seen.add(key)
                    out.append(resource)
    return out


def _fresh_id(old: str, copy: int) -> str:
    # the copy number replaces the first three hex digits: unique while the old ids differ after them
    return f"{copy:03x}{old[3:]}"


def replicate(originals: list[dict], copy: int):
    """Copy `copy` of the set: fresh ids, references rewritten to Type/id, identifier values suffixed."""
    type_of = {r["id"]: r["resourceType"] for r in originals}

    def ref(match):
        old = match.group(1)
        return f'"{type_of[old]}/{_fresh_id(old, copy)}"'

    for original in originals:
        raw = _UUID_REF.sub(ref, orjson.dumps(original).decode())
        resource = orjson.loads(raw)
        resource["id"] = _fresh_id(original["id"], copy)
        if copy:
            for identifier in resource.get("identifier", ()):
                if "value" in identifier:
                    identifier["value"] = f"{identifier['value']}-{copy}"
        yield resource


def build(store: Store, copies: int) -> None:
    store.create_schema()
    originals = synthea_resources()
    assert len({r["id"][3:] for r in originals}) == len(originals), "ids collide after their first 3 digits"
    with store.engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(resources)).scalar_one()
    first = have // len(originals)
    if have % len(originals):
        raise SystemExit(f"the database holds {have} resources, not whole copies of {len(originals)}; "
                         "start from an empty database")
    bar = tqdm(total=copies * len(originals), initial=have, unit="resource", desc="building", smoothing=0.05)
    for copy in range(first, copies):
        batch = []
        for resource in replicate(originals, copy):
            batch.append(resource)
            if len(batch) == BATCH:
                _store_batch(store, batch)
                bar.update(len(batch))
                batch = []
        if batch:
            _store_batch(store, batch)
            bar.update(len(batch))
    bar.close()
    if store.dialect == "postgresql":
        # what autovacuum does to freshly loaded tables in time: statistics, and the visibility map
        # that lets a query read an index alone (an index-only scan)
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
        return
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _store_batch(store: Store, batch: list[dict]) -> None:
    with store.session(write=True) as uow:
        for resource in batch:
            uow.create(resource)


# ---------------------------------------------------------------------------- samples from the data

MRN_SYSTEM = "https://github.com/synthetichealth/synthea"


def _content(value) -> dict:
    return value if isinstance(value, dict) else orjson.loads(value)


def draw_samples(store: Store, count: int, seed: int = 7) -> list[dict]:
    """Patients drawn at random with values taken from their own records: what the mix searches for."""
    rng = random.Random(seed)
    samples = []
    with store.engine.connect() as conn:
        patient_rids = conn.execute(text("SELECT rid FROM resources WHERE res_type = 'Patient'")).scalars().all()
        for rid in rng.sample(patient_rids, min(count, len(patient_rids))):
            patient = _content(conn.execute(text("SELECT content FROM resources WHERE rid = :rid"),
                                            {"rid": rid}).scalar_one())
            sample = {"id": patient["id"], "family": patient["name"][0]["family"],
                      "birth_year": int(patient["birthDate"][:4]),
                      "mrn": next(i["value"] for i in patient["identifier"] if i.get("system") == MRN_SYSTEM)}
            for kind in ("Observation", "Condition", "Encounter"):
                rows = conn.execute(text(
                    "SELECT rid FROM idx_reference WHERE res_type = :t AND param = 'patient' "
                    "AND target_type = 'Patient' AND target_id = :id"), {"t": kind, "id": patient["id"]}).scalars().all()
                if not rows:
                    break
                resource = _content(conn.execute(text("SELECT content FROM resources WHERE rid = :rid"),
                                                 {"rid": rng.choice(rows)}).scalar_one())
                sample[kind] = resource
            else:
                samples.append(sample)
    return samples


# ---------------------------------------------------------------------------- the query mix

def _loinc(sample) -> tuple[str, str]:
    coding = sample["Observation"]["code"]["coding"][0]
    return coding["system"], coding["code"]


def _obs_year(sample) -> int:
    return int(sample["Observation"]["effectiveDateTime"][:4])


def _enc_month(sample) -> tuple[str, str]:
    start = sample["Encounter"]["period"]["start"][:7]
    year, month = int(start[:4]), int(start[5:7])
    nxt = f"{year + month // 12}-{month % 12 + 1:02d}"
    return start, nxt


def _enc_day(sample) -> str:
    return sample["Encounter"]["period"]["start"][:10]


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _us(value: str) -> int:
    from ihs.fhir.indexing import date_bounds
    return date_bounds(value)[0]


class Shape:
    """One query of the mix: the FHIR search, and the hand-written SQL returning the same page."""

    def __init__(self, name, res_type, query, sql, params, count_sql=None):
        self.name, self.res_type, self.query, self.sql, self.params = name, res_type, query, sql, params
        self.count_sql = count_sql


SHAPES = [
    Shape("Patient by identifier", "Patient",
          lambda s: [("identifier", f"{MRN_SYSTEM}|{s['mrn']}")],
          "SELECT r.rid, r.content FROM idx_token t JOIN resources r ON r.rid = t.rid WHERE t.res_type = 'Patient' "
          "AND t.param = 'identifier' AND t.code = :code AND t.system = :system AND NOT r.deleted LIMIT 51",
          lambda s: {"system": MRN_SYSTEM, "code": s["mrn"]}),
    Shape("Patient by family prefix + birthdate range", "Patient",
          lambda s: [("family", s["family"][:4]), ("birthdate", f"ge{s['birth_year'] - 5}"),
                     ("birthdate", f"lt{s['birth_year'] + 5}")],
          "SELECT r.rid, r.content FROM resources r WHERE r.rid IN (SELECT n.rid FROM idx_string n WHERE "
          "n.res_type = 'Patient' AND n.param = 'family' AND n.value >= :lo AND n.value < :hi) AND r.rid IN "
          "(SELECT b.rid FROM idx_date b WHERE b.res_type = 'Patient' AND b.param = 'birthdate' "
          "AND b.low >= :start AND b.low < :end) AND NOT r.deleted ORDER BY r.last_updated, r.rid LIMIT 51",
          lambda s: {"lo": _prefix_range(s["family"][:4].lower())[0], "hi": _prefix_range(s["family"][:4].lower())[1],
                     "start": _us(f"{s['birth_year'] - 5}"), "end": _us(f"{s['birth_year'] + 5}")}),
    Shape("Observation by patient + LOINC + date range, sorted by date", "Observation",
          lambda s: [("patient", f"Patient/{s['id']}"), ("code", "|".join(_loinc(s))),
                     ("date", f"ge{_obs_year(s) - 3}"), ("date", f"lt{_obs_year(s) + 3}"), ("_sort", "date")],
          "SELECT r.rid, r.content FROM idx_reference p JOIN idx_token c ON c.rid = p.rid JOIN idx_date d "
          "ON d.rid = p.rid JOIN resources r ON r.rid = p.rid WHERE p.res_type = 'Observation' AND "
          "p.param = 'patient' AND p.target_id = :id AND p.target_type = 'Patient' AND c.param = 'code' "
          "AND c.code = :code AND c.system = :system AND d.param = 'date' AND d.low >= :start AND d.low < :end "
          "ORDER BY d.low, r.rid LIMIT 51",
          lambda s: {"id": s["id"], "system": _loinc(s)[0], "code": _loinc(s)[1],
                     "start": _us(f"{_obs_year(s) - 3}"), "end": _us(f"{_obs_year(s) + 3}")}),
    Shape("Encounter by date and class", "Encounter",
          lambda s: [("date", _enc_day(s)), ("class", sample_class(s))],
          "SELECT r.rid, r.content FROM idx_date d JOIN resources r ON r.rid = d.rid WHERE d.res_type = 'Encounter' "
          "AND d.param = 'date' AND d.low >= :start AND d.low < :end AND d.high <= :end AND EXISTS (SELECT 1 FROM "
          "idx_token c WHERE c.rid = d.rid AND c.param = 'class' AND c.code = :code) ORDER BY r.last_updated, "
          "r.rid LIMIT 51",
          lambda s: {"start": _us(_enc_day(s)), "end": _us(_enc_day(s)) + 86_400_000_000, "code": sample_class(s)}),
    Shape("Two-level chain: Observation?encounter.patient.identifier", "Observation",
          lambda s: [("encounter:Encounter.patient:Patient.identifier", f"{MRN_SYSTEM}|{s['mrn']}")],
          "SELECT r.rid, r.content FROM idx_token t JOIN resources p ON p.rid = t.rid JOIN idx_reference e "
          "ON e.res_type = 'Encounter' AND e.param = 'patient' AND e.target_id = p.res_id AND e.target_type = "
          "'Patient' JOIN resources enc ON enc.rid = e.rid JOIN idx_reference o ON o.res_type = 'Observation' "
          "AND o.param = 'encounter' AND o.target_id = enc.res_id AND o.target_type = 'Encounter' JOIN "
          "resources r ON r.rid = o.rid WHERE t.res_type = 'Patient' AND t.param = 'identifier' AND "
          "t.code = :code AND t.system = :system ORDER BY r.last_updated, r.rid LIMIT 51",
          lambda s: {"system": MRN_SYSTEM, "code": s["mrn"]}),
    Shape("_include: Encounter?patient&_include=Encounter:service-provider", "Encounter",
          lambda s: [("patient", s["id"]), ("_include", "Encounter:service-provider")],
          "SELECT r.rid, r.content FROM resources r WHERE r.rid IN (SELECT p.rid FROM idx_reference p WHERE "
          "p.res_type = 'Encounter' AND p.param = 'patient' AND p.target_id = :id UNION SELECT o.rid FROM "
          "idx_reference p JOIN idx_reference v ON v.rid = p.rid AND v.param = 'service-provider' JOIN resources o "
          "ON o.res_type = v.target_type AND o.res_id = v.target_id WHERE p.res_type = 'Encounter' AND "
          "p.param = 'patient' AND p.target_id = :id) ORDER BY r.last_updated, r.rid LIMIT 102",
          lambda s: {"id": s["id"]}),
    Shape("_revinclude: Patient?identifier&_revinclude=Encounter:patient", "Patient",
          lambda s: [("identifier", f"{MRN_SYSTEM}|{s['mrn']}"), ("_revinclude", "Encounter:patient")],
          "SELECT r.rid, r.content FROM resources r WHERE r.rid IN (SELECT t.rid FROM idx_token t WHERE "
          "t.res_type = 'Patient' AND t.param = 'identifier' AND t.code = :code AND t.system = :system UNION "
          "SELECT e.rid FROM idx_token t JOIN resources p ON p.rid = t.rid JOIN idx_reference e ON "
          "e.res_type = 'Encounter' AND e.param = 'patient' AND e.target_id = p.res_id AND "
          "e.target_type = 'Patient' WHERE t.res_type = 'Patient' AND t.param = 'identifier' AND t.code = :code "
          "AND t.system = :system)",
          lambda s: {"system": MRN_SYSTEM, "code": s["mrn"]}),
    Shape("_has: Patient?_has:Condition:patient:code + birthdate", "Patient",
          lambda s: [("_has:Condition:patient:code", condition_code(s)), ("birthdate", f"ge{s['birth_year'] - 5}"),
                     ("birthdate", f"lt{s['birth_year'] + 5}")],
          "SELECT r.rid, r.content FROM idx_date b JOIN resources r ON r.rid = b.rid WHERE b.res_type = 'Patient' "
          "AND b.param = 'birthdate' AND b.low >= :start AND b.low < :end AND EXISTS (SELECT 1 FROM idx_reference p "
          "JOIN idx_token c ON c.rid = p.rid AND c.param = 'code' AND c.code = :code AND c.system = :system WHERE "
          "p.res_type = 'Condition' AND p.param = 'patient' AND p.target_type = 'Patient' AND p.target_id = "
          "r.res_id) ORDER BY r.last_updated, r.rid LIMIT 51",
          lambda s: {"system": condition_code(s).split("|")[0], "code": condition_code(s).split("|")[1],
                     "start": _us(f"{s['birth_year'] - 5}"), "end": _us(f"{s['birth_year'] + 5}")}),
]


# not in the mix: a one-month ge/lt window over Periods, which drives through idx_date_long (ranges.py)
WINDOW = Shape("(outside the mix) Encounter by one-month ge/lt window and class", "Encounter",
               lambda s: [("date", f"ge{_enc_month(s)[0]}"), ("date", f"lt{_enc_month(s)[1]}"),
                          ("class", sample_class(s))],
               "SELECT r.rid, r.content FROM idx_date d JOIN resources r ON r.rid = d.rid WHERE d.res_type = "
               "'Encounter' AND d.param = 'date' AND d.low >= :start AND d.low < :end AND EXISTS (SELECT 1 FROM "
               "idx_token c WHERE c.rid = d.rid AND c.param = 'class' AND c.code = :code) ORDER BY "
               "r.last_updated, r.rid LIMIT 51",
               lambda s: {"start": _us(_enc_month(s)[0]), "end": _us(_enc_month(s)[1]), "code": sample_class(s)})


def sample_class(sample) -> str:
    return sample["Encounter"]["class"]["code"]


def condition_code(sample) -> str:
    coding = sample["Condition"]["code"]["coding"][0]
    return f"{coding['system']}|{coding['code']}"


# ---------------------------------------------------------------------------- measuring

def _time_engine(store: Store, shape: Shape, sample) -> tuple[float, int]:
    started = time.perf_counter()
    with store.session() as uow:
        result = search(uow, shape.res_type, shape.query(sample))
        found = len(result.matches) + len(result.included)
    return time.perf_counter() - started, found


def _time_sql(store: Store, shape: Shape, sample) -> tuple[float, int]:
    sql = text(shape.sql)
    params = shape.params(sample)
    started = time.perf_counter()
    with store.engine.connect() as conn:
        rows = conn.execute(sql, params).all()
        for _, content in rows:
            _content(content)  # the engine parses each resource too
    return time.perf_counter() - started, len(rows)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(store: Store, samples: list[dict]) -> list[dict]:
    rows = []
    for shape in SHAPES + [WINDOW]:
        for sample in samples[:10]:  # warm caches and compiled extractors
            _time_engine(store, shape, sample)
            _time_sql(store, shape, sample)
        engine, sql, found = [], [], []
        for sample in samples:
            seconds, count = _time_engine(store, shape, sample)
            engine.append(seconds)
            found.append(count)
            sql.append(_time_sql(store, shape, sample)[0])
        rows.append({"query": shape.name, "p50": _percentile(engine, 0.5) * 1e3, "p95": _percentile(engine, 0.95) * 1e3,
                     "sql_p50": _percentile(sql, 0.5) * 1e3, "sql_p95": _percentile(sql, 0.95) * 1e3,
                     "ratio": _percentile(engine, 0.5) / _percentile(sql, 0.5),
                     "resources": statistics.mean(found)})
    return rows


def _worker(args) -> int:
    url, samples, seconds, offset = args
    store = Store(url, pool_size=2)
    done, i = 0, offset
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        shape = SHAPES[i % len(SHAPES)]
        _time_engine(store, shape, samples[(i // len(SHAPES)) % len(samples)])
        done += 1
        i += 1
    store.dispose()
    return done


def single_process(store: Store, samples: list[dict], seconds: float) -> tuple[float, float]:
    """(searches/s, CPU ms per search) of the mix run round-robin in this process alone."""
    done, wall, cpu = 0, time.perf_counter(), time.process_time()
    deadline = wall + seconds
    while time.perf_counter() < deadline:
        _time_engine(store, SHAPES[done % len(SHAPES)], samples[(done // len(SHAPES)) % len(samples)])
        done += 1
    return done / (time.perf_counter() - wall), (time.process_time() - cpu) / done * 1e3


def throughput(url: str, samples: list[dict], workers: int, seconds: float) -> float:
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        counts = pool.map(_worker, [(url, samples, seconds, k * 7) for k in range(workers)])
    return sum(counts) / seconds


def run(store: Store, url: str, sample_count: int, workers: int, seconds: float) -> None:
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(resources)).scalar_one()
    samples = draw_samples(store, sample_count)
    print(f"{store.dialect}: {total:,} resources; {len(samples)} sampled patients; "
          f"{multiprocessing.cpu_count()} cores", flush=True)
    rows = measure(store, samples)
    print("| query | p50 ms | p95 ms | hand-written SQL p50 ms | ratio (p50) | resources per answer |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['query']} | {row['p50']:.1f} | {row['p95']:.1f} | {row['sql_p50']:.1f} | "
              f"{row['ratio']:.1f} | {row['resources']:.0f} |")
    everything = [r["p95"] for r in rows]
    print(f"\nworst p95: {max(everything):.1f} ms", flush=True)
    rate, cpu = single_process(store, samples, min(seconds, 10.0))
    print(f"one process: {rate:.0f} searches/s, {cpu:.2f} ms of CPU per search (load {os.getloadavg()[0]:.1f})",
          flush=True)
    rate = throughput(url, samples, workers, seconds)
    print(f"throughput of the mix: {rate:.0f} searches/s with {workers} worker processes over {seconds:.0f} s "
          f"(load {os.getloadavg()[0]:.1f})")


def show_sql(store: Store) -> None:
    """Each query's compiled page statement (literal values) and the database's plan for it."""
    from ihs.store.search.run import plan

    samples = draw_samples(store, 1)
    for shape in SHAPES:
        with store.session() as uow:
            page = plan(uow, shape.res_type, shape.query(samples[0])).page
            shown = page.compile(dialect=uow.conn.dialect, compile_kwargs={"literal_binds": True})
            print(f"-- {shape.name}\n{str(shown).replace('LIMIT ? OFFSET', 'LIMIT -1 OFFSET')};")
            compiled = page.compile(dialect=uow.conn.dialect)
            explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
            params = compiled.params if compiled.positiontup is None else \
                tuple(compiled.params[name] for name in compiled.positiontup)
            for row in uow.conn.exec_driver_sql(explain + str(compiled), params):
                print("--   " + " ".join(str(c) for c in row[-1:]))
            print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "run", "sql"])
    parser.add_argument("--database", required=True)
    parser.add_argument("--copies", type=int, default=26, help="26 copies of 38,472 = 1,000,272 resources")
    parser.add_argument("--samples", type=int, default=200, help="patients the mix draws its values from")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the throughput run lasts")
    args = parser.parse_args()
    store = Store(args.database)
    if args.command == "build":
        build(store, args.copies)
    elif args.command == "sql":
        show_sql(store)
    else:
        run(store, args.database, args.samples, args.workers, args.seconds)


if __name__ == "__main__":
    main()
