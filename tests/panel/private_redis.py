"""A redis-server of a test's own on a free loopback port, without persistence, and a
small wait helper: for tests that stop and start the broker."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server")


def wait_for(condition: Callable[[], object], what: str, timeout: float, log=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = ("\n" + log()[-4000:]) if log else ""
            raise AssertionError(f"not within {timeout} s: {what}{tail}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """redis-server on a free loopback port, without persistence; restartable."""

    def __init__(self, folder: Path) -> None:
        assert REDIS_SERVER
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        with (self.folder / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                ],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(self._answers, f"redis-server on port {self.port}", 10)

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError((self.folder / "redis.log").read_text()[-2000:])
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.client.connection_pool.disconnect()

    def restart(self) -> str:
        """Stop and start again on the same port; returns the new run_id."""
        before = self.client.info("server")["run_id"]
        self.stop()
        self.start()
        after = self.client.info("server")["run_id"]
        assert after != before
        return after
