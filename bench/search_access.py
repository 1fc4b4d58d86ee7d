"""What the access policy inside the search SQL costs: a practitioner's searches against a system's.

    .venv/bin/python bench/search_access.py run [--database URL] [--residents 60] [--rounds 60]
    .venv/bin/python bench/search_access.py explain --database URL [--patients 1000]

`run` builds the demo region (SQLite in a temporary directory unless --database names an empty
database) and answers a fixed mix of searches as the demo family doctor (restricted: own
institution's records, treatment relationships under Consent, directory data) and as a trusted
backend system (no restriction, so no condition at all), alternating the two on every sample so
machine load hits both alike. Each search is what the API does minus HTTP and audit: the policy's
restriction, one SQL statement, the page, its includes and the Bundle. It prints p50 per query
for both principals and their ratio, and the same for the page statement alone (planned once,
then only executed: what the restriction costs the database).

`explain` prints, for an existing database (e.g. bench/search.py's), the SQL and the database's
plan of three searches under a staff restriction granting `--patients` patients and under a
patient's restriction: the restriction must add one indexed semi-join, not a scan.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ihs.api import searching, security  # noqa: E402
from ihs.auth.benchmark import demo_store  # noqa: E402
from ihs.auth.principal import Principal  # noqa: E402
from ihs.auth.restriction import PatientGrant, Restriction, author_tag  # noqa: E402
from ihs.auth.resource_classes import OPEN_TYPES  # noqa: E402
from ihs.auth.scopes import parse_scopes  # noqa: E402
from ihs.store.search import find  # noqa: E402
from ihs.store.search.run import plan  # noqa: E402
from ihs.store.store import Store  # noqa: E402


def principals(store: Store) -> tuple[Principal, Principal, dict]:
    """The demo family doctor (as a token would describe them), a trusted system, and values to search for."""
    from ihs.auth.demo import _organization, _staff
    from ihs.auth.relationships import affiliation

    with store.session() as uow:
        doctor = _staff(uow, _organization(uow, "WX-ASCHC"), "doctor")
        roles, organizations = affiliation(uow, doctor)
        patient = find(uow, "Patient", [("general-practitioner", doctor)], limit=1)[0].id
        observation = find(uow, "Observation", [("subject", f"Patient/{patient}")], limit=1)[0].resource()
    code = observation["code"]["coding"][0]
    practitioner = Principal(subject="doctor", roles=roles, scopes=parse_scopes("user/*.cruds"), fhir_user=doctor,
                             organizations=organizations)
    system = Principal(subject="his", roles=frozenset({"system"}), scopes=parse_scopes("system/*.cruds"))
    return practitioner, system, {"patient": patient, "code": f"{code['system']}|{code['code']}"}


def mix(values: dict) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [
        ("Observation, newest 20", "Observation", [("_count", "20")]),
        ("Observation by code, by date", "Observation", [("code", values["code"]), ("_sort", "-date"),
                                                          ("_count", "20")]),
        ("Observation of a patient", "Observation", [("subject", f"Patient/{values['patient']}")]),
        ("Patient by family name prefix", "Patient", [("family", "w")]),
        ("Encounter with _include subject", "Encounter", [("_include", "Encounter:subject"), ("_count", "20")]),
        ("Patient with _revinclude Condition", "Patient", [("_revinclude", "Condition:subject"), ("_count", "10")]),
    ]


def run(database: str | None, residents: int, rounds: int) -> None:
    store = demo_store(database, residents)
    practitioner, system, values = principals(store)
    print(f"demo region: {residents} residents on {store.dialect}; practitioner {practitioner.fhir_user} "
          f"of {', '.join(practitioner.organizations)}")
    print("| search | system p50 ms | practitioner p50 ms | ratio | page SQL alone: system, practitioner ms, ratio "
          "| practitioner's matches / system's |")
    print("|---|---|---|---|---|---|")
    ratios, sql_ratios = [], []
    for name, res_type, query in mix(values):
        times = {"system": [], "practitioner": []}
        found = {}
        for _ in range(rounds):
            for who, principal in (("system", system), ("practitioner", practitioner)):
                token = security.current_principal.set(principal)
                try:
                    start = time.perf_counter()
                    with store.session() as uow:
                        answer = searching.search_bundle(uow, res_type, query, base="http://bench")
                    times[who].append((time.perf_counter() - start) * 1000)
                finally:
                    security.current_principal.reset(token)
                found[who] = len(answer.get("entry", []))
        p50 = {who: statistics.median(t[len(t) // 10:]) for who, t in times.items()}  # first rounds warm caches
        ratio = p50["practitioner"] / p50["system"]
        ratios.append(ratio)
        sql = page_sql_p50(store, res_type, query, {"system": system, "practitioner": practitioner}, rounds)
        sql_ratio = sql["practitioner"] / sql["system"]
        sql_ratios.append(sql_ratio)
        print(f"| {name} | {p50['system']:.2f} | {p50['practitioner']:.2f} | {ratio:.2f} | "
              f"{sql['system']:.2f}, {sql['practitioner']:.2f}, {sql_ratio:.2f} | "
              f"{found['practitioner']} / {found['system']} |")
    print(f"\ngeometric mean of the ratios: whole search {statistics.geometric_mean(ratios):.2f}, "
          f"page statement alone {statistics.geometric_mean(sql_ratios):.2f}")


def page_sql_p50(store: Store, res_type: str, query, people: dict, rounds: int) -> dict[str, float]:
    """p50 ms of executing each principal's page statement (built once), alternating principals."""
    pages, times = {}, {who: [] for who in people}
    for who, principal in people.items():
        token = security.current_principal.set(principal)
        try:
            with store.session() as uow:
                restriction = security.search_restriction(uow, res_type, query)
                pages[who] = plan(uow, res_type, query, restriction=restriction).page
        finally:
            security.current_principal.reset(token)
    with store.session() as uow:
        for _ in range(rounds):
            for who in people:
                start = time.perf_counter()
                uow.conn.execute(pages[who]).all()
                times[who].append((time.perf_counter() - start) * 1000)
    return {who: statistics.median(t[len(t) // 10:]) for who, t in times.items()}


def explain(database: str, patients: int) -> None:
    """SQL and plan of a few searches under a staff restriction of `patients` patients and a patient's."""
    from sqlalchemy import select

    from ihs.store.schema import resources

    store = Store(database)
    with store.session() as uow:
        ids = list(uow.conn.execute(select(resources.c.res_id).where(resources.c.res_type == "Patient")
                                    .limit(patients)).scalars())
        code = find(uow, "Observation", [("subject", f"Patient/{ids[0]}")], limit=1)[0].resource()["code"]["coding"][0]
    staff = Restriction(open_types=OPEN_TYPES | {"Patient"}, tags=frozenset({author_tag("Organization/1")}),
                        unattached=True, grants=(PatientGrant(frozenset(ids), why="treatment relationship"),))
    patient = Restriction(open_types=OPEN_TYPES, grants=(PatientGrant(frozenset(ids[:1]), why="own record"),))
    searches = [("Observation by code", "Observation", [("code", f"{code['system']}|{code['code']}"), ("_count", "20")]),
                ("Observation, newest 20", "Observation", [("_count", "20")]),
                ("Observation of one patient", "Observation", [("subject", f"Patient/{ids[0]}")])]
    for label, restriction in (("staff granted %d patients" % len(ids), staff), ("a patient", patient)):
        for name, res_type, query in searches:
            with store.session() as uow:
                page = plan(uow, res_type, query, restriction=restriction).page
                compiled = page.compile(dialect=uow.conn.dialect, compile_kwargs={"render_postcompile": True})
                print(f"-- {name}, as {label}")
                shown = page.compile(dialect=uow.conn.dialect, compile_kwargs={"literal_binds": True})
                text = str(shown)
                print(text if len(text) < 4000 else text[:1500] + " ... " + text[-1500:])
                prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
                params = compiled.params if compiled.positiontup is None else \
                    tuple(compiled.params[n] for n in compiled.positiontup)
                for row in uow.conn.exec_driver_sql(prefix + str(compiled), params):
                    print("--   " + " ".join(str(c) for c in row[-1:]))
                unrestricted = plan(uow, res_type, query).page
                timings = {}
                for kind, statement in (("unrestricted", unrestricted), ("restricted", page)) * 2:
                    start = time.perf_counter()
                    uow.conn.execute(statement).all()
                    timings[kind] = (time.perf_counter() - start) * 1000  # the second run: warm cache
                print(f"--   ran in {timings['restricted']:.1f} ms; the same search unrestricted "
                      f"{timings['unrestricted']:.1f} ms\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "explain"])
    parser.add_argument("--database")
    parser.add_argument("--residents", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--patients", type=int, default=1000)
    args = parser.parse_args()
    if args.command == "run":
        run(args.database, args.residents, args.rounds)
    else:
        if not args.database:
            parser.error("explain needs --database")
        explain(args.database, args.patients)


if __name__ == "__main__":
    main()
