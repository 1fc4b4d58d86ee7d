"""Running `ihs serve` as a real subprocess, for tests and benchmarks that need one."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`ihs serve` on a free port; `start()` waits until /healthz answers."""

    def __init__(self, database: str, *, workers: int = 1, log_level: str = "WARNING", secured: bool = True):
        self.database = database
        self.secured = secured
        self.workers = workers
        self.log_level = log_level
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "ServerProcess":
        env = {**os.environ, "IHS_LOG_LEVEL": self.log_level}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ihs.cli", "serve", "--port", str(self.port), "--database", self.database,
             "--workers", str(self.workers), "--log-level", self.log_level,
             *([] if self.secured else ["--unsecured-benchmark"])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy in time")

    def system_token(self) -> str:
        """A bearer token for a trusted backend system, registered in this server's database."""
        from ihs.server import open_store
        from tests.conftest import system_token

        store = open_store(self.database)
        try:
            return system_token(store, base_url=self.base)
        finally:
            store.dispose()

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handlers, no flushing."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
