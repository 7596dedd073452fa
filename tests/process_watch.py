"""Watching every process while a mail command runs: a secret must show in no argv
or environment (``/proc/PID/cmdline`` and ``/proc/PID/environ``).

Polling ``/proc`` alone misses a program that lives a few milliseconds on a busy
machine (postfix's ``sendmail`` handing a message to ``postdrop``), so as root the
watcher also hears every exec from the kernel's process-event connector and reads
that process at once."""

from __future__ import annotations

import os
import socket
import struct
import threading
from pathlib import Path

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_EXEC = 0x2
_EVENT_OFFSET = 16 + 20  # nlmsghdr, then cn_msg
_EXEC_PID_OFFSET = _EVENT_OFFSET + 16  # after what, cpu, timestamp


def _exec_events() -> socket.socket | None:
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        sock.bind((0, CN_IDX_PROC))
        body = struct.pack("=IIIIHHI", CN_IDX_PROC, 1, 0, 0, 4, 0, PROC_CN_MCAST_LISTEN)
        sock.send(struct.pack("=IHHII", 16 + len(body), 3, 0, 0, 0) + body)
    except OSError:  # not root, or no connector in this kernel: polling still runs
        return None
    sock.settimeout(0.2)
    return sock


class ProcessWatcher(threading.Thread):
    """Reads every process's argv and environment until stopped, looking for a secret."""

    def __init__(self, secret: str) -> None:
        super().__init__(daemon=True)
        self.secret = secret.encode()
        self.leaks: list[str] = []
        self.seen: set[str] = set()  # program names seen, to show the watch worked
        self.done = threading.Event()
        self._me = str(os.getpid())
        self._events = _exec_events()
        self._listener = threading.Thread(target=self._listen, daemon=True)

    def _read(self, pid: str) -> None:
        for part in ("cmdline", "environ"):
            try:
                data = Path("/proc", pid, part).read_bytes()
            except OSError:
                continue
            if part == "cmdline" and data:
                self.seen.add(os.path.basename(data.split(b"\0")[0].decode(errors="replace")))
            if self.secret in data and pid != self._me:
                self.leaks.append(f"{pid}/{part}: {data[:200]!r}")

    def run(self) -> None:
        while not self.done.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                self._read(pid)

    def _listen(self) -> None:
        assert self._events is not None
        while not self.done.is_set():
            try:
                data = self._events.recv(4096)
            except TimeoutError:
                continue
            except OSError:  # a burst overran the socket buffer: polling covers the gap
                continue
            if len(data) >= _EXEC_PID_OFFSET + 4:
                (what,) = struct.unpack_from("=I", data, _EVENT_OFFSET)
                if what == PROC_EVENT_EXEC:
                    (pid,) = struct.unpack_from("=I", data, _EXEC_PID_OFFSET)
                    self._read(str(pid))

    def __enter__(self) -> ProcessWatcher:
        if self._events is not None:
            self._listener.start()
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.join()
        if self._events is not None:
            self._listener.join()
            self._events.close()
