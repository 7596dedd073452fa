"""Watching every process while a mail command runs: a secret must show in no argv
or environment (``/proc/PID/cmdline`` and ``/proc/PID/environ``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path


class ProcessWatcher(threading.Thread):
    """Reads every process's argv and environment until stopped, looking for a secret."""

    def __init__(self, secret: str) -> None:
        super().__init__(daemon=True)
        self.secret = secret.encode()
        self.leaks: list[str] = []
        self.seen: set[str] = set()  # program names seen, to show the watch worked
        self.done = threading.Event()

    def run(self) -> None:
        me = str(os.getpid())
        while not self.done.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                for part in ("cmdline", "environ"):
                    try:
                        data = Path("/proc", pid, part).read_bytes()
                    except OSError:
                        continue
                    if part == "cmdline" and data:
                        self.seen.add(
                            os.path.basename(data.split(b"\0")[0].decode(errors="replace"))
                        )
                    if self.secret in data and pid != me:
                        self.leaks.append(f"{pid}/{part}: {data[:200]!r}")

    def __enter__(self) -> ProcessWatcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.join()
