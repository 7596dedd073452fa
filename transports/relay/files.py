"""Writing a relay's files safely: merge, back up, write atomically, restore.

A relay's files often hold more than our one account (other password-map entries,
the administrator's own macros), so a generated file is merged into the existing
one rather than replacing it. Every file is backed up before the first write and
restored as a whole when the relay rejects the result.

Backups are pruned: the newest ``KEEP_BACKUPS`` of each file stay. The backup of a
file that holds a password (the SASL map, exim's passwd.client, a compiled map) is
written 0600 and removed, with every older backup of that file, as soon as the apply
is over: it is needed only for a rollback, and an old password must not outlive it.
"""

from __future__ import annotations

import contextlib
import glob
import grp
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..texts import Text, gettext_noop
from .model import ConfigFile

BACKUP_INFIX = ".xmailadmin-backup-"
BLOCK_BEGIN = "# BEGIN xmailadmin: managed by the xmailadmin panel, changes here are replaced"
BLOCK_END = "# END xmailadmin"
KEEP_BACKUPS = 5  # per file, the newest
# What follows the infix: the stamp, and ".N" for a second apply within one second.
_BACKUP_SUFFIX = re.compile(r"^(\d{8}-\d{6})(?:\.(\d+))?$")


def backup_stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


@dataclass
class Backup:
    """Copies taken before a change: path -> copy, or None when the file did not exist."""

    saved: dict[str, str | None] = field(default_factory=dict)
    # Files holding a password: their copies are 0600 and go when the apply is over.
    secret: set[str] = field(default_factory=set)
    # The original's mode, uid and gid, put back on restore (a secret's copy is 0600).
    owners: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def copies(self) -> list[str]:
        return [copy for copy in self.saved.values() if copy and os.path.exists(copy)]

    def restore(self) -> None:
        for path, copy in self.saved.items():
            if copy is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            else:
                _copy_atomically(copy, path, self.owners.get(path))

    def finish(self) -> None:
        """The apply is over (done, or rolled back): no rollback needs the secret files'
        copies any more. Remove them and every older backup of those files."""
        for path in self.secret:
            for copy in backups_of(path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(copy)


def backups_of(path: str) -> list[str]:
    """The backups of ``path``, oldest first."""
    found = []
    for copy in glob.glob(glob.escape(f"{path}{BACKUP_INFIX}") + "*"):
        match = _BACKUP_SUFFIX.match(copy[len(path) + len(BACKUP_INFIX) :])
        if match:
            found.append(((match.group(1), int(match.group(2) or 0)), copy))
    return [copy for _key, copy in sorted(found)]


def prune_backups(path: str, keep: int = KEEP_BACKUPS) -> list[str]:
    """Remove all but the newest ``keep`` backups of ``path``; the ones removed."""
    removed = backups_of(path)[: -keep or None] if keep > 0 else backups_of(path)
    for copy in removed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(copy)
    return removed


def take_backup(
    paths: list[str], stamp: str, secret: Iterable[str] = (), keep: int = KEEP_BACKUPS
) -> Backup:
    """Copy each of ``paths`` aside (``secret`` ones 0600), keeping ``keep`` per file."""
    backup = Backup(secret=set(secret) & set(paths))
    for path in dict.fromkeys(paths):  # each file once, in order
        if not os.path.exists(path):
            backup.saved[path] = None
            continue
        copy = f"{path}{BACKUP_INFIX}{stamp}"
        n = 1
        while os.path.exists(copy):  # two applies within one second
            copy, n = f"{path}{BACKUP_INFIX}{stamp}.{n}", n + 1
        st = os.stat(path)
        backup.owners[path] = (st.st_mode & 0o7777, st.st_uid, st.st_gid)
        if path in backup.secret:
            _copy_private(path, copy)
        else:
            _copy_atomically(path, copy)
        backup.saved[path] = copy
        prune_backups(path, keep)
    return backup


def _copy_private(source: str, dest: str) -> None:
    """A copy that is 0600 from its first byte, whatever the original's mode (exim's
    passwd.client is 0640 for its group)."""
    tmp = f"{dest}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            os.fchmod(out.fileno(), 0o600)
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _copy_atomically(source: str, dest: str, owner: tuple[int, int, int] | None = None) -> None:
    """Copy with the source's mode and owner, or with ``owner`` (mode, uid, gid)."""
    tmp = f"{dest}.tmp-{os.getpid()}"
    shutil.copy2(source, tmp)
    st = os.stat(source)
    mode, uid, gid = owner or (st.st_mode & 0o7777, st.st_uid, st.st_gid)
    if os.geteuid() == 0:
        os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)


def write_file(path: str, content: str, mode: int, group: str | None = None) -> None:
    """Replace ``path`` atomically; the file never exists with looser rights than ``mode``."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # the umask may have taken bits away
        if group is not None:
            os.chown(tmp, 0, grp.getgrnam(group).gr_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def merged(existing: str, generated: ConfigFile) -> str:
    """The file's new content: ours merged into what is there."""
    merge = _MERGES[generated.merge]
    return merge(existing, generated.content)


def write_merged(f: ConfigFile, drop: Iterable[str] = ()) -> None:
    """Write ``f`` merged into the file that is there, with its mode and group; the lines
    whose key is in ``drop`` (an account's entry that ours replaces) go too."""
    content = merged(read_text(f.path), f)
    separator = ":" if f.merge == "colon-lines" else None
    ours = {_line_key(line, separator) for line in f.content.splitlines()}
    if gone := {key.lower() for key in drop} - ours:
        kept = [ln for ln in content.splitlines() if _line_key(ln, separator) not in gone]
        content = "\n".join(kept) + "\n" if kept else ""
    write_file(f.path, content, f.mode, f.group)


def _line_key(line: str, separator: str | None) -> str | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    return stripped.split(separator, 1)[0].strip().lower()


def _merge_lines(existing: str, new: str, separator: str | None = None) -> str:
    ours = {_line_key(line, separator) for line in new.splitlines()} - {None}
    kept = [line for line in existing.splitlines() if _line_key(line, separator) not in ours]
    return "\n".join([*kept, *new.splitlines()]) + "\n"


def _merge_colon_lines(existing: str, new: str) -> str:
    return _merge_lines(existing, new, ":")


def _merge_block(existing: str, new: str) -> str:
    lines, kept, inside = existing.splitlines(), [], False
    for line in lines:
        if line.strip() == BLOCK_BEGIN:
            inside = True
        elif inside and line.strip() == BLOCK_END:
            inside = False
        elif not inside:
            kept.append(line)
    block = [BLOCK_BEGIN, *new.rstrip("\n").splitlines(), BLOCK_END]
    return "\n".join([*block, *kept]) + "\n"


def _merge_assignments(existing: str, new: str) -> str:
    wanted = dict(line.split("=", 1) for line in new.splitlines() if "=" in line)
    out, seen = [], set()
    for line in existing.splitlines():
        name = line.split("=", 1)[0].strip() if "=" in line else None
        if name in wanted and not line.lstrip().startswith("#"):
            out.append(f"{name}={wanted[name]}")
            seen.add(name)
        else:
            out.append(line)
    out += [f"{name}={value}" for name, value in wanted.items() if name not in seen]
    return "\n".join(out) + "\n"


_MERGES = {
    "lines": _merge_lines,
    "colon-lines": _merge_colon_lines,
    "block": _merge_block,
    "assignments": _merge_assignments,
}


def rights_problem(directory: str) -> Text | None:
    """Why this process may not change the relay, or None."""
    if os.geteuid() != 0:
        return Text(
            gettext_noop(
                "writing the relay configuration and reloading the relay needs root; "
                "copy the generated configuration instead"
            )
        )
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        return Text(
            gettext_noop("the configuration directory %(path)s is missing or not writable"),
            {"path": directory},
        )
    return None
