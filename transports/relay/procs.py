"""Small, bounded looks at processes through /proc: is the relay's daemon alive,
and have the processes of an old configuration gone after a reload."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            text = fh.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    # The command name in parentheses may hold blanks: split after its closing bracket.
    return text[text.rfind(")") + 2 :].split()


def process_alive(pid: int, name: str | None = None) -> bool:
    """``pid`` runs (a zombie has exited); with ``name``, it is that program, so a stale
    pid file whose number was reused does not count."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    if name is None:
        return True
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip() == name[:15]
    except OSError:
        return False


def children_of(pid: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) and fields[1] == str(pid):
            children.add(int(entry))
    return children


def wait_gone(pids: Iterable[int], timeout: float, interval: float = 0.05) -> bool:
    """Wait until none of ``pids`` is alive; False if some still are at the deadline."""
    waiting = set(pids)
    deadline = time.monotonic() + timeout
    while waiting:
        waiting = {pid for pid in waiting if process_alive(pid)}
        if not waiting:
            break
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True
