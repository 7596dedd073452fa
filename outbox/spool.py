"""Writing a message into the outbox durably, and reading it back.

One file per message: a JSON line with the envelope, then the message bytes unchanged.
The folders are made like postfix's ``maildrop``: ``tmp/`` and ``new/`` are mode 3733
(anyone may drop a file, nobody but the owner may list them; setgid, so a file dropped
there belongs to the delivering service's group). Each message file is 0640: the
submitter and the service's group may read it, no other local user. After the rename
the submitter writes a byte into the ``trigger`` FIFO, as nullmailer's queue does, so
the delivery starts at once; nothing is lost when nobody listens (the delivery also
looks on its own).
"""

from __future__ import annotations

# Only modules that the interpreter has loaded at start or that are built in: this runs
# on every application's send (xmail-sendmail), and json, re, pathlib, dataclasses and
# secrets each cost milliseconds to import. json is imported where messages are read.
import os
import time

DEFAULT_DIR = "/var/spool/xmailadmin/outbox"
DROP_MODE = 0o3733
TRIGGER = "trigger"
# Where mail to a bare local name (cron's "root") goes: one address, readable by every
# submitter, written by ``manage.py install_sendmail --admin-address``.
ADMIN_ADDRESS = "adminaddr"


class Envelope:
    """Who sent a message to whom; the first line of its file, as JSON."""

    __slots__ = ("sender", "recipients", "submitted_by", "submitted_at", "kind")

    def __init__(
        self,
        sender: str,
        recipients: list[str],
        submitted_by: str = "",  # the local user, as the kernel says (uid)
        submitted_at: float | None = None,
        # "bounce": a notice the delivery wrote itself; never answered by another notice.
        kind: str = "message",
    ) -> None:
        self.sender = sender
        self.recipients = list(recipients)
        self.submitted_by = submitted_by
        self.submitted_at = time.time() if submitted_at is None else submitted_at
        self.kind = kind

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Envelope) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"Envelope({self.as_dict()!r})"


def as_json(envelope: Envelope) -> bytes:
    """The envelope as one line of JSON (what ``json.dumps(..., ensure_ascii=False)``
    writes), without importing json."""
    parts = []
    for name, value in envelope.as_dict().items():
        if isinstance(value, list):
            shown = "[" + ", ".join(_json_string(item) for item in value) + "]"
        elif isinstance(value, float):
            shown = repr(value)
        else:
            shown = _json_string(value)
        parts.append(f'"{name}": {shown}')
    return ("{" + ", ".join(parts) + "}").encode("utf-8")


def _json_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    if not escaped.isprintable():  # control characters, line breaks
        escaped = "".join(c if c.isprintable() else _json_escape(c) for c in escaped)
    return f'"{escaped}"'


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON writes the rest as a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def outbox_dir() -> str:
    return os.environ.get("XMAILADMIN_OUTBOX") or DEFAULT_DIR


def prepare(root: str | os.PathLike, group: int | None = None) -> None:
    """Create the drop folders, the delivery's own folders and the trigger FIFO, as their
    owner (the service's user); ``group`` is the group that may read dropped messages."""
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    for name, mode in (("tmp", DROP_MODE), ("new", DROP_MODE), ("cur", 0o700),
                       ("done", 0o700), ("status", 0o711)):  # fmt: skip
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        if group is not None:
            os.chown(folder, -1, group)
        os.chmod(folder, mode)
    trigger = os.path.join(root, TRIGGER)
    if not os.path.lexists(trigger):
        os.mkfifo(trigger)
    os.chmod(trigger, 0o622)


def submit(root: str | os.PathLike, envelope: Envelope, message: bytes) -> str:
    """Write ``message`` durably into ``root/new``; returns its id. Raises OSError when
    it cannot be written: then nothing was accepted and no file is left behind."""
    root = os.fspath(root)
    unique = f"{time.time_ns()}.{os.getpid()}_{os.urandom(6).hex()}.{os.uname().nodename}"
    tmp, new = os.path.join(root, "tmp", unique), os.path.join(root, "new", unique)
    data = as_json(envelope) + b"\n" + message
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
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
        try:  # noqa: SIM105 (contextlib is one more import on every send)
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_dir(os.path.join(root, "new"))
    wake(root)
    return unique


def wake(root: str | os.PathLike) -> None:
    """Tell a listening delivery that there is work; without a listener, do nothing."""
    try:
        fd = os.open(os.path.join(root, TRIGGER), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody listens; ENOENT: an outbox made before the FIFO
        return
    try:
        os.write(fd, b"x")
    except OSError:  # EAGAIN: the FIFO is full of wake-ups already
        pass
    finally:
        os.close(fd)


def admin_address(root: str | os.PathLike) -> str | None:
    """The address that takes mail for local users, or None when none is set."""
    try:
        with open(os.path.join(root, ADMIN_ADDRESS), encoding="utf-8") as file:
            return file.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def write_admin_address(root: str | os.PathLike, address: str) -> None:
    """Replaced whole, so a submitter never reads half an address."""
    path = os.path.join(root, ADMIN_ADDRESS)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as file:
        file.write(address + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def status_path(root: str | os.PathLike, message_id: str) -> str:
    """Where the delivery says what became of a message, for ``xmail-sendmail --wait``."""
    return os.path.join(root, "status", message_id)


def read(path: str | os.PathLike) -> tuple[Envelope, bytes]:
    import json  # the delivery's side: not worth its import on every submission

    with open(path, "rb") as file:
        head, _, message = file.read().partition(b"\n")
    return Envelope(**json.loads(head)), message


def _sync_dir(folder: str) -> None:
    # The rename is durable only once the folder itself is on disk. A user who may only
    # drop files (mode 3733) cannot open the folder: the file's own fsync has to do.
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except PermissionError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
