"""Typed helpers that read settings from the environment (no Django import).

Every helper fails loudly on a value it cannot parse: a typo in the
environment stops the start instead of silently running with a default.
Secrets come from ``NAME``, from the file named by ``NAME_FILE``, or from a
0600 file under ``var/`` that is created on first start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(RuntimeError):
    """A setting in the environment has a value that cannot be used."""


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value}: must be at least {minimum}")
    return value


def envlist(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.replace("\n", ",").split(",") if item.strip()]


def envsecret(name: str) -> str | None:
    """``NAME`` itself, or the content of the file named by ``NAME_FILE``."""
    value = os.environ.get(name)
    if value:
        return value.strip()
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={path!r}: {exc.strerror}") from None
    return None


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """Read a secret from ``path``; create it (mode 0600) with ``make()`` on first start.

    Creation is atomic (write a private temporary file, then hard-link it into
    place) so that two processes starting at once agree on one value.
    """
    try:
        content = path.read_text().strip()
    except FileNotFoundError:
        content = ""
    if content:
        return content
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(make() + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process was first; use its value
    finally:
        os.unlink(tmp)
    return path.read_text().strip()
