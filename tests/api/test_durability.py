"""Nothing a client was told is saved may be lost when the server process dies."""
from __future__ import annotations

import threading
import time
from pathlib import Path

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


def _filing_processes(server: ServerProcess) -> list[int]:
    """The server's filing process: a child of the supervising process, in a session of its own (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == server.process.pid and int(fields[3]) != server.process.pid:
                found.append(int(entry.name))
    return found


def _gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_the_filing_process_files_every_read_by_the_stop_and_ends_with_the_server(url):
    from ihs.audit import verify
    from ihs.audit.journal import unfiled_events
    from ihs.store.store import Store

    server = ServerProcess(url, workers=2).start()
    headers = {"Authorization": f"Bearer {server.system_token()}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=10) as http:
        patient = http.post("/Patient", json={"resourceType": "Patient"}).json()["id"]
        for _ in range(50):
            assert http.get(f"/Patient/{patient}").status_code == 200
    filing = _filing_processes(server)
    assert len(filing) == 1  # one process files for both workers, outside their session
    server.stop()
    assert _gone(filing)
    store = Store(url)
    try:
        assert unfiled_events(store) == 0  # the last round ran after the workers ended
        assert verify(store).ok and verify(store).checked >= 51
    finally:
        store.dispose()

    killed = ServerProcess(url, workers=2).start()
    filing = _filing_processes(killed)
    killed.kill()  # the supervisor's process group only: the filing process ends with its parent
    assert filing and _gone(filing)
