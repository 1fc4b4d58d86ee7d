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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_answered_create_survives_sigkill(backend, tmp_path, request):
    if backend == "postgresql":
        with scratch_database(request.getfixturevalue("postgres_server"), "durability") as url:
            _check_survives_sigkill(url)
    else:
        _check_survives_sigkill(f"sqlite:///{tmp_path}/ihs.db")


def _check_survives_sigkill(url: str) -> None:
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
