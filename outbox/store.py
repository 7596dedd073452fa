"""The delivering side of the outbox: taking dropped messages, holding one while it is
sent, and putting it away once it is final.

A message moves ``new/`` → ``cur/`` (taken: the panel has its row) → removed once
delivered, or ``done/`` once bounced or discarded (kept for a retry after a fix). While
a process sends a message it holds an exclusive ``flock`` on its file: a second
delivery skips it, and a process killed mid-send loses the lock with its life, so the
message is free to be sent again. That is the whole at-least-once rule: nothing is
marked sent before the server has taken it, and nothing needs a clean shutdown.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .spool import TRIGGER, Envelope, read, status_path


def dropped(root: Path) -> list[str]:
    """Ids of messages in ``new/``, oldest first (the id starts with the time)."""
    return sorted(p.name for p in (root / "new").iterdir() if not p.name.startswith("."))


# Maildir's rule: a file in tmp/ this old was left by a submitter that died mid-write.
STALE_TMP_S = 36 * 3600


def sweep_tmp(root: Path, now: float | None = None) -> int:
    """Remove half-written messages of dead submitters (never picked up: only a rename
    into new/ makes a message); how many were removed."""
    limit = (time.time() if now is None else now) - STALE_TMP_S
    removed = 0
    for path in (root / "tmp").iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.lstat().st_mtime < limit:
                path.unlink()
                removed += 1
    return removed


def take(root: Path, message_id: str) -> None:
    """``new/`` → ``cur/``; the row must exist first, so a crash in between only leaves
    a message that the next pickup takes again."""
    with contextlib.suppress(FileNotFoundError):
        os.rename(root / "new" / message_id, root / "cur" / message_id)


def path_of(root: Path, message_id: str) -> Path | None:
    for folder in ("cur", "new", "done"):
        if (path := root / folder / message_id).exists():
            return path
    return None


def load(root: Path, message_id: str) -> tuple[Envelope, bytes] | None:
    path = path_of(root, message_id)
    return None if path is None else read(path)


@contextlib.contextmanager
def held(root: Path, message_id: str) -> Iterator[bool]:
    """True while this process alone holds the message; False when another does (or
    it is gone)."""
    path = root / "cur" / message_id
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def is_free(root: Path, message_id: str) -> bool:
    """In ``cur/`` and held by nobody: a process that was sending it has died."""
    with held(root, message_id) as mine:
        return mine


def remove(root: Path, message_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(root / "cur" / message_id)


def put_away(root: Path, message_id: str) -> None:
    """Bounced or discarded: out of the way, kept for a retry."""
    with contextlib.suppress(FileNotFoundError):
        os.rename(root / "cur" / message_id, root / "done" / message_id)


def bring_back(root: Path, message_id: str) -> bool:
    """``done/`` → ``cur/`` for a retry; False when the file is gone."""
    try:
        os.rename(root / "done" / message_id, root / "cur" / message_id)
    except FileNotFoundError:
        return (root / "cur" / message_id).exists()
    return True


def forget(root: Path, message_id: str) -> None:
    for folder in ("done", "cur"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(root / folder / message_id)


def write_status(root: Path, message_id: str, status: dict) -> None:
    """What became of the message, for its submitter (``--wait``): readable by anyone
    who knows the id, which only the submitter does (the folder cannot be listed)."""
    path = Path(status_path(root, message_id))
    tmp = path.with_name(f".{message_id}.tmp")
    tmp.write_text(json.dumps(status, ensure_ascii=False), encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def drop_status(root: Path, message_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(status_path(root, message_id))


def listen(root: Path, wake: Callable[[], None], every: float, stop: Callable[[], bool]) -> None:
    """Call ``wake`` when a submitter writes into the trigger FIFO, and at least every
    ``every`` seconds (retries fall due; a wake-up may have been missed). Runs until
    ``stop()``; a burst of wake-ups calls ``wake`` once."""
    trigger = root / TRIGGER
    # O_RDWR keeps a writer end open ourselves, so the FIFO never reports EOF forever.
    fd = os.open(trigger, os.O_RDWR | os.O_NONBLOCK)
    try:
        wake()  # what was dropped while nobody listened
        while not stop():
            ready, _, _ = select.select([fd], [], [], every)
            if ready:
                time.sleep(0.02)  # gather the burst
                _drain(fd)
            wake()
    finally:
        os.close(fd)


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return
            raise
