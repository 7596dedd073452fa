"""Writing a relay's files safely: merge, back up, write atomically, restore.

A relay's files often hold more than our one account (other password-map entries,
the administrator's own macros), so a generated file is merged into the existing
one rather than replacing it. Every file is backed up before the first write and
restored as a whole when the relay rejects the result.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import time
from dataclasses import dataclass, field

from .model import ConfigFile

BACKUP_INFIX = ".xmailadmin-backup-"
BLOCK_BEGIN = "# BEGIN xmailadmin: managed by the xmailadmin panel, changes here are replaced"
BLOCK_END = "# END xmailadmin"


def backup_stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


@dataclass
class Backup:
    """Copies taken before a change: path -> copy, or None when the file did not exist."""

    saved: dict[str, str | None] = field(default_factory=dict)

    @property
    def copies(self) -> list[str]:
        return [copy for copy in self.saved.values() if copy]

    def restore(self) -> None:
        for path, copy in self.saved.items():
            if copy is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            else:
                _copy_atomically(copy, path)


def take_backup(paths: list[str], stamp: str) -> Backup:
    backup = Backup()
    for path in dict.fromkeys(paths):  # each file once, in order
        if not os.path.exists(path):
            backup.saved[path] = None
            continue
        copy = f"{path}{BACKUP_INFIX}{stamp}"
        n = 1
        while os.path.exists(copy):  # two applies within one second
            copy, n = f"{path}{BACKUP_INFIX}{stamp}.{n}", n + 1
        _copy_atomically(path, copy)
        backup.saved[path] = copy
    return backup


def _copy_atomically(source: str, dest: str) -> None:
    # copy2 keeps the mode, so a 0600 password map stays 0600 in its backup.
    tmp = f"{dest}.tmp-{os.getpid()}"
    shutil.copy2(source, tmp)
    st = os.stat(source)
    if os.geteuid() == 0:
        os.chown(tmp, st.st_uid, st.st_gid)
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


def write_merged(f: ConfigFile) -> None:
    """Write ``f`` merged into the file that is there, with its mode and group."""
    write_file(f.path, merged(read_text(f.path), f), f.mode, f.group)


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


def rights_problem(directory: str) -> tuple[str, str] | None:
    """Why this process may not change the relay (English, German), or None."""
    if os.geteuid() != 0:
        return (
            "writing the relay configuration and reloading the relay needs root; "
            "copy the generated configuration instead",
            "Konfiguration schreiben und Relay neu laden braucht root-Rechte; "
            "stattdessen die erzeugte Konfiguration übernehmen",
        )
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        return (
            f"the configuration directory {directory} is missing or not writable",
            f"das Konfigurationsverzeichnis {directory} fehlt oder ist nicht beschreibbar",
        )
    return None
