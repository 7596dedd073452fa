"""Writing a message into the outbox durably, and reading it back.

One file per message: a JSON line with the envelope, then the message bytes unchanged.
The folders are made like postfix's ``maildrop``: ``tmp/`` and ``new/`` are mode 1733
(anyone may drop a file, nobody but the owner may list or read them), each message file
is 0600 and owned by whoever submitted it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_DIR = "/var/spool/xmailadmin/outbox"
DROP_MODE = 0o1733


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: list[str]
    submitted_by: str = ""  # the local user, as the kernel says (uid)
    submitted_at: float = field(default_factory=time.time)


def outbox_dir() -> Path:
    return Path(os.environ.get("XMAILADMIN_OUTBOX") or DEFAULT_DIR)


def prepare(root: Path) -> None:
    """Create the drop folders (as their owner, usually root at install time)."""
    for name in ("tmp", "new"):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, DROP_MODE)


def submit(root: Path, envelope: Envelope, message: bytes) -> str:
    """Write ``message`` durably into ``root/new``; returns its id. Raises OSError when
    it cannot be written: then nothing was accepted and no file is left behind."""
    unique = f"{time.time_ns()}.{os.getpid()}_{secrets.token_hex(6)}.{socket.gethostname()}"
    tmp, new = root / "tmp" / unique, root / "new" / unique
    data = json.dumps(asdict(envelope), ensure_ascii=False).encode() + b"\n" + message
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, new)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_dir(root / "new")
    return unique


def read(path: Path) -> tuple[Envelope, bytes]:
    head, _, message = path.read_bytes().partition(b"\n")
    return Envelope(**json.loads(head)), message


def _sync_dir(folder: Path) -> None:
    # The rename is durable only once the folder itself is on disk. A user who may only
    # drop files (mode 1733) cannot open the folder: the file's own fsync has to do.
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except PermissionError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

