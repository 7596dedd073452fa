"""Reading an SMTP server's replies: the code, the words, the EHLO capabilities and
what they announce (AUTH mechanisms, SIZE); for the server check's connections and its
judgement alike."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

# How much of a server's words a finding quotes.
TEXT_LIMIT = 200


def reply_code(reply: list[bytes]) -> int | None:
    return int(reply[-1][:3]) if reply else None


def reply_text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return "".join(c for c in text if c.isprintable()).strip()[:TEXT_LIMIT]


def reply_words(reply: list[bytes]) -> str:
    """A reply as one line: its code and text (all lines)."""
    if not reply:
        return "(no reply)"
    return reply_text(reply[0][:4] + b" ".join(line[4:] for line in reply))


def capabilities_of(reply: list[bytes]) -> list[str]:
    """The EHLO keywords (every line after the first, which names the server)."""
    return [text for line in reply[1:] if (text := reply_text(line[4:]))]


def keywords_of(capabilities: Sequence[str]) -> set[str]:
    return {c.split()[0].upper() for c in capabilities if c.split()}


def auth_mechanisms(capabilities: Sequence[str] | None) -> list[str]:
    """The mechanisms of ``AUTH ...`` (and the old ``AUTH=...``), in order, once each."""
    found: list[str] = []
    for capability in capabilities or ():
        upper = capability.upper()
        if upper.startswith(("AUTH ", "AUTH=")):
            found += [m for m in upper[5:].split() if m not in found]
    return found


def size_limit(capabilities: Sequence[str] | None) -> int | None:
    for capability in capabilities or ():
        parts = capability.split()
        if parts[0].upper() == "SIZE":
            return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return None


def ssl_words(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc).replace("_", " ").lower()
