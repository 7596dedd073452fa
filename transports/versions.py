"""What mail commands and TLS libraries say of themselves: the parsers several modules read.

A parser that only one mail command needs lives in that command's module (``curl.py``,
``mailx.py``, ...); here stay the shared ones: the OpenSSL banner (python, perl, mutt, exim,
the library probe), ``NAME = VALUE`` lines (postconf, the perl probe) and ``exim -bV``
(the exim command and the exim relay). Pure functions on text; the examples in the
docstrings are run as tests.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class VersionInfo(NamedTuple):
    """What a tool says about itself: its version and the TLS library it names."""

    version: str | None = None
    library: str | None = None
    library_version: str | None = None


_LIBRARY_NAMES = {
    name.lower(): name
    for name in (
        "OpenSSL",
        "LibreSSL",
        "BoringSSL",
        "GnuTLS",
        "NSS",
        "wolfSSL",
        "mbedTLS",
        "BearSSL",
        "rustls",
        "Schannel",
        "SecureTransport",
        "libtls",
        "none",
    )
}


def canonical_library(name: str | None) -> str | None:
    """The usual spelling of a TLS library name.

    >>> canonical_library("gnutls"), canonical_library("OPENSSL"), canonical_library("zlib")
    ('GnuTLS', 'OpenSSL', None)
    """
    return _LIBRARY_NAMES.get((name or "").strip().lower())


_BANNER = re.compile(r"\b(OpenSSL|LibreSSL|BoringSSL)\s+(\d+\.\d+[0-9A-Za-z.\-]*)")


def parse_openssl_banner(text: str) -> tuple[str, str] | None:
    """(library, version) from an OpenSSL-style banner.

    The same banner comes from ``openssl version``, python's ``ssl.OPENSSL_VERSION``, perl's
    ``Net::SSLeay::SSLeay_version(0)`` and the library's own ``OpenSSL_version(0)``.

    >>> parse_openssl_banner("OpenSSL 1.0.2k-fips  26 Jan 2017")
    ('OpenSSL', '1.0.2k-fips')
    >>> parse_openssl_banner("LibreSSL 3.3.6")
    ('LibreSSL', '3.3.6')
    """
    match = _BANNER.search(text or "")
    return (match.group(1), match.group(2)) if match else None


def parse_assignments(text: str) -> dict[str, str]:
    """``NAME = VALUE`` lines as a dict (``postconf [-d] NAME ...``, our probe scripts).

    >>> parse_assignments("mail_version = 3.7.11\\ndaemon_directory = /usr/lib/postfix/sbin\\n")
    {'mail_version': '3.7.11', 'daemon_directory': '/usr/lib/postfix/sbin'}
    """
    pairs = (line.partition("=") for line in (text or "").splitlines())
    return {name.strip(): value.strip() for name, sep, value in pairs if sep and name.strip()}


def parse_exim_version(text: str) -> VersionInfo:
    """``exim -bV``: version, ``Support for:`` line, and the runtime library version.

    >>> parse_exim_version(
    ...     "Exim version 4.96 #2 built 04-Oct-2023 11:45:22\\n"
    ...     "Support for: crypteq iconv() IPv6 PAM GnuTLS move_frozen_messages DANE DKIM\\n"
    ...     "Library version: GnuTLS: Compile: 3.7.9\\n                         Runtime: 3.7.9\\n")
    VersionInfo(version='4.96', library='GnuTLS', library_version='3.7.9')
    >>> parse_exim_version("Exim version 4.94.2 #2 built 12-Jan-2022\\n"
    ...     "Support for: iconv() IPv6 OpenSSL DKIM\\n"
    ...     "Library version: OpenSSL: Compile: OpenSSL 1.1.1k  FIPS 25 Mar 2021\\n"
    ...     "                          Runtime: OpenSSL 1.1.1k  FIPS 25 Mar 2021\\n")
    VersionInfo(version='4.94.2', library='OpenSSL', library_version='1.1.1k')
    """
    text = text or ""
    version = re.search(r"Exim version (\S+)", text)
    support = re.search(r"^Support for:(.*)$", text, re.MULTILINE)
    library = None
    if support:
        words = support.group(1).split()
        library = next((w for w in ("GnuTLS", "OpenSSL") if w in words), None)
    lib_version = None
    runtime = re.search(r"Library version: (GnuTLS|OpenSSL):.*\n\s*Runtime:\s*(.+)", text)
    if runtime:
        library = library or runtime.group(1)
        banner = parse_openssl_banner(runtime.group(2))
        lib_version = banner[1] if banner else runtime.group(2).split()[0]
    return VersionInfo(version and version.group(1), library, lib_version)
