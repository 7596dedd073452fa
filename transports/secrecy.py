"""Keeping the SMTP password out of argv, environments and transcripts."""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MASK = "********"


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


@contextmanager
def private_dir() -> Iterator[PrivateDir]:
    path = tempfile.mkdtemp(prefix="xmailadmin-")  # mkdtemp makes it 0700
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


# The argument of an AUTH command, whatever the tool prints around it.
_AUTH_ARG = re.compile(r"(AUTH\s+(?:PLAIN|LOGIN|XOAUTH2|CRAM-MD5)\s+)\S+", re.IGNORECASE)
# A client line answering a "334" challenge (AUTH LOGIN): "> dGVzdGVy" style.
_AFTER_334 = re.compile(r"(334[^\n]*\n[^\n]*?(?:>|-->|C:|\bsend)\s*)([A-Za-z0-9+/=]{4,})")


def redact(text: str, user: str, password: str) -> str:
    for form in secret_forms(user, password):
        text = text.replace(form, MASK)
    text = _AUTH_ARG.sub(lambda m: m.group(1) + MASK, text)
    return _AFTER_334.sub(lambda m: m.group(1) + MASK, text)
