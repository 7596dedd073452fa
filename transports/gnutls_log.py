"""The TLS version a GnuTLS program negotiated, read from GnuTLS's own debug log.

mutt and GNU Mailutils say nothing of their TLS session in batch mode, not even in
mutt's debug file. GnuTLS does, on stderr, when ``GNUTLS_DEBUG_LEVEL`` asks: level 4
names the protocol version (as its wire number, 3.4 for TLS 1.3) and carries no record
contents (those start at level 9). Its lines are taken out again before the tool's own
words are classified or shown: a hundred lines of handshake steps are no transcript.
"""

from __future__ import annotations

import dataclasses
import re

from .run import RunOutput

ENV = {"GNUTLS_DEBUG_LEVEL": "4"}

_LINE = re.compile(r"^gnutls\[\d+\]: [^\n]*\n?", re.MULTILINE)
# TLS 1.3 is agreed in the supported_versions extension; the ServerHello's own field
# stays 3.3 then, and is the version itself up to TLS 1.2.
# Only GnuTLS's own lines count: mailutils echoes the message, which may say anything.
_NEGOTIATED = re.compile(r"^gnutls\[\d+\]: EXT\[\w+\]: Negotiated version: (3\.\d)$", re.MULTILINE)
_SERVER_HELLO = re.compile(r"^gnutls\[\d+\]: HSK\[\w+\]: Server's version: (3\.\d)$", re.MULTILINE)
_WIRE = {"3.1": "TLSv1", "3.2": "TLSv1.1", "3.3": "TLSv1.2", "3.4": "TLSv1.3"}


def negotiated_version(text: str) -> str | None:
    """``TLSv1.3`` style, or None when the log names no version (no handshake, or a
    program whose GnuTLS was not asked, or one built with OpenSSL).

    >>> negotiated_version("gnutls[4]: HSK[0x1]: Server's version: 3.3\\n"
    ...                    "gnutls[4]: EXT[0x1]: Negotiated version: 3.4\\n")
    'TLSv1.3'
    >>> negotiated_version("gnutls[4]: HSK[0x1]: Server's version: 3.3\\n")
    'TLSv1.2'
    """
    for pattern in (_NEGOTIATED, _SERVER_HELLO):
        if found := pattern.findall(text or ""):
            return _WIRE.get(found[-1])
    return None


def without_log(out: RunOutput) -> RunOutput:
    """The run as the tool itself spoke: GnuTLS's debug lines removed."""
    return dataclasses.replace(
        out, stdout=_LINE.sub("", out.stdout), stderr=_LINE.sub("", out.stderr)
    )
