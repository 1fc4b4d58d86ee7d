"""Nothing a client was told is saved may be lost when the server process dies."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.conftest import scratch_database
from tests.server_process import ServerProcess


def _create_until_killed(base: str, token: str, answered: list[str], stop: threading.Event) -> None:
    headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                response = http.post("/Patient", json={"resourceType": "Patient", "gender": "female",
                                                       "name": [{"family": "李", "given": [f"{n}"]}]},
                                     headers={"Prefer": "return=minimal"})
            except httpx.HTTPError:
                return  # the server died mid-request: this create was never confirmed
            if response.status_code == 201:
                answered.append(response.headers["Location"].split("/_history")[0].split("/", 3)[3])


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """An empty database of each backend, for a server process of its own."""
    if request.param == "postgresql":
        with scratch_database(request.getfixturevalue("postgres_server"), "durability") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path}/ihs.db"


def test_every_answered_create_survives_sigkill(url):
    server = ServerProcess(url, workers=2).start()
    token = server.system_token()
    answered: list[str] = []
    stop = threading.Event()
    writers = [threading.Thread(target=_create_until_killed, args=(server.base, token, answered, stop))
               for _ in range(4)]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 30
    while len(answered) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # mid-stream: the writers are still sending
    stop.set()
    for w in writers:
        w.join()
    assert len(answered) >= 300

    restarted = ServerProcess(url).start()
    try:
        headers = {"Authorization": f"Bearer {restarted.system_token()}"}
        with httpx.Client(base_url=restarted.base, headers=headers, timeout=10) as http:
            missing = [ref for ref in answered if http.get(f"/{ref}").status_code != 200]
    finally:
        restarted.stop()
    assert missing == []


def _read_until_killed(base: str, token: str, path: str, answered: list[int], stop: threading.Event) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
        while not stop.is_set():
            try:
                response = http.get(path)
            except httpx.HTTPError:
                return  # the server died mid-request: this read was never answered
            if response.status_code == 200:
                answered.append(1)


def test_the_audit_event_of_every_answered_read_survives_sigkill(url):
    """Reads are journaled before the response and filed later: a killed server's journals are filed
    by the next start, so every answered read has its AuditEvent."""
    server = ServerProcess(url, workers=2).start()
    token = server.system_token()
    created = httpx.post(f"{server.base}/Patient", json={"resourceType": "Patient"},
                         headers={"Authorization": f"Bearer {token}"})
    patient = created.json()["id"]
    answered: list[int] = []
    stop = threading.Event()
    readers = [threading.Thread(target=_read_until_killed,
                                args=(server.base, token, f"/Patient/{patient}", answered, stop)) for _ in range(4)]
    for r in readers:
        r.start()
    deadline = time.monotonic() + 30
    while len(answered) < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # the filer is behind the reads: some answered reads are only in the journals
    stop.set()
    for r in readers:
        r.join()

    restarted = ServerProcess(url).start()
    try:
        headers = {"Authorization": f"Bearer {restarted.system_token()}"}
        query = f"/AuditEvent?patient=Patient/{patient}&action=R&_summary=count&_total=accurate"
        with httpx.Client(base_url=restarted.base, headers=headers, timeout=10) as http:
            http.get(f"/Patient/{patient}")  # the new writer's filer adopts the killed workers' journals
            deadline = time.monotonic() + 30
            while (filed := http.get(query).json()["total"]) < len(answered) and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        restarted.stop()
    assert len(answered) >= 500
    assert filed >= len(answered)  # and the reads the new server answered meanwhile
