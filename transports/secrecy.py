"""Keeping the SMTP password out of argv, environments, transcripts and the disk.

Where a tool can only read the password from a file (mutt's muttrc, s-nail's
MAILRC, msmtp's ``passwordeval``), that file lives in a private folder of
one send, inside one product-owned base folder (see :func:`runtime_base`):
on tmpfs where there is one, so the secret never reaches a disk. The folder
is removed after the send; if the process dies first, its guardian (``run``)
removes it, and :func:`sweep_stale` (at worker start and before every new
folder) removes folders whose owning process is gone: the owner's pid and
start time are in the folder's name.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .run import watched_folder

MASK = "********"
RUNTIME_DIR_ENV = "XMAILADMIN_RUNTIME_DIR"
# <pid>.<start time in clock ticks>.<mkdtemp's random part>
_OWNED = re.compile(r"^(\d+)\.(\d+)\.[A-Za-z0-9_]+$")


class PrivateDir:
    """A 0700 directory whose files are created 0600 and removed afterwards."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def write(self, name: str, content: str | bytes, mode: int = 0o600) -> str:
        path = self.path / name
        data = content.encode() if isinstance(content, str) else content
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return str(path)


def _own_private_folder(path: Path, create_parents: bool = False) -> bool:
    """Make ``path`` a 0700 folder of ours, or say it cannot be one (someone else's, a
    symlink, a file): in a shared folder like /dev/shm a name can be taken first."""
    try:
        if create_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return False
        if stat.S_IMODE(info.st_mode) != 0o700:
            path.chmod(0o700)
        return True
    except OSError:
        return False


def runtime_base() -> Path:
    """The product's folder for private folders: ``$XMAILADMIN_RUNTIME_DIR``, else
    ``$XDG_RUNTIME_DIR/xmailadmin``, else ``/dev/shm/xmailadmin-UID`` (both tmpfs), else
    ``xmailadmin-UID`` in the system temp folder. Always 0700 and owned by us."""
    configured = os.environ.get(RUNTIME_DIR_ENV, "").strip()
    if configured:
        path = Path(configured)
        if not _own_private_folder(path, create_parents=True):
            raise OSError(f"{RUNTIME_DIR_ENV}={configured} is no 0700 folder of this user")
        return path
    uid = os.geteuid()
    candidates = []
    if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"], "xmailadmin"))
    if os.path.isdir("/dev/shm"):
        candidates.append(Path("/dev/shm", f"xmailadmin-{uid}"))
    candidates.append(Path(tempfile.gettempdir(), f"xmailadmin-{uid}"))
    for path in candidates:
        if _own_private_folder(path):
            return path
    raise OSError(f"no private folder could be made in {', '.join(map(str, candidates))}")


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None: no such process, a
    zombie, or no /proc). With the pid it names one process, even after the pid is
    reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        # A zombie has ended; a killed worker's pool processes stay zombies until
        # init reaps them, which may take a while.
        return None if fields[0] in (b"Z", b"X") else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _owner_tag() -> str:
    pid = os.getpid()
    return f"{pid}.{_start_time(pid) or 0}."


def _owner_alive(pid: int, started: int) -> bool:
    now = _start_time(pid)
    if now is not None:
        return started == 0 or now == started
    if os.path.isdir("/proc/self"):
        return False  # gone, or a zombie
    try:  # no /proc: the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(base: Path | None = None) -> list[str]:
    """Remove the private folders whose owning process is gone (a worker killed mid-send
    whose guardian did not get to it); return what was removed."""
    base = base or runtime_base()
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        match = _OWNED.match(name)
        if match and not _owner_alive(int(match.group(1)), int(match.group(2))):
            shutil.rmtree(base / name, ignore_errors=True)
            removed.append(str(base / name))
    return removed


@contextmanager
def private_dir() -> Iterator[PrivateDir]:
    base = runtime_base()
    sweep_stale(base)
    path = tempfile.mkdtemp(prefix=_owner_tag(), dir=base)  # mkdtemp makes it 0700
    with watched_folder(path):  # our guardian removes it should we die in between
        try:
            yield PrivateDir(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)


def secret_forms(user: str, password: str) -> list[str]:
    """Every spelling of the password a tool might print: raw, base64, URL-encoded."""
    if not password:
        return []
    forms = {password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)}
    for raw in (
        password,
        f"\0{user}\0{password}",
        f"{user}\0{user}\0{password}",
        f"{user}:{password}",
    ):
        encoded = base64.b64encode(raw.encode()).decode()
        forms.add(encoded)
        forms.add(encoded.rstrip("="))
    return sorted((f for f in forms if len(f) >= 3), key=len, reverse=True)


# The argument of an AUTH command on the same line, whatever the tool prints around it:
# a base64 blob, masked up to its end. A word shaped like a SASL mechanism name (RFC 4422:
# capitals, digits, - and _) is the server's list ("250-AUTH LOGIN NTLM", or smtplib's
# "Msg: b'...\\nAUTH LOGIN NTLM'"), which is no secret, whichever mechanisms it names.
_AUTH_ARG = re.compile(
    r"((?i:AUTH[ \t]+[A-Z0-9_-]{1,20})[ \t]+)"
    rf"(?!{re.escape(MASK)})(?![A-Z0-9_-]{{1,20}}(?![A-Za-z0-9+/=]))"
    r"([A-Za-z0-9+/]+=*|\S+)"
)

# A client line answering a "334" challenge (AUTH LOGIN): "> dGVzdGVy" style.
_AFTER_334 = re.compile(r"(334[^\n]*\n[^\n]*?(?:>|-->|C:|\bsend)\s*)([A-Za-z0-9+/=]{4,})")


def redact(text: str, user: str, password: str) -> str:
    for form in secret_forms(user, password):
        text = text.replace(form, MASK)
    text = _AUTH_ARG.sub(lambda m: m.group(1) + MASK, text)
    return _AFTER_334.sub(lambda m: m.group(1) + MASK, text)
