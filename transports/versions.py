"""What mail commands and TLS libraries say of themselves: parsers of version outputs.

Pure functions on text; the examples in the docstrings are run as tests.
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


def parse_openssl_version(text: str) -> VersionInfo:
    """``openssl version``; OpenSSL 3 adds the library it really loaded in brackets.

    >>> parse_openssl_version("OpenSSL 3.0.19 27 Jan 2026 (Library: OpenSSL 3.0.22 25 Aug 2026)")
    VersionInfo(version='3.0.19', library='OpenSSL', library_version='3.0.22')
    >>> parse_openssl_version("OpenSSL 0.9.8zh 3 Dec 2015")
    VersionInfo(version='0.9.8zh', library='OpenSSL', library_version='0.9.8zh')
    """
    tool = parse_openssl_banner(text)
    if tool is None:
        return VersionInfo()
    library = tool
    loaded = re.search(r"\(Library:\s*([^)]*)\)", text)
    if loaded:
        library = parse_openssl_banner(loaded.group(1)) or tool
    return VersionInfo(tool[1], library[0], library[1])


def _without_brackets(text: str) -> str:
    return re.sub(r"\([^)]*\)", " ", text)


def parse_curl_version(text: str) -> VersionInfo:
    """First line of ``curl -V``: the TLS backend is the ``Name/version`` token.

    A curl built with several backends lists the inactive ones in brackets; those are skipped.

    >>> parse_curl_version("curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 "
    ...                    "OpenSSL/3.0.19 zlib/1.2.13 (+libidn2/2.3.3)")
    VersionInfo(version='7.88.1', library='OpenSSL', library_version='3.0.19')
    >>> parse_curl_version("curl 7.29.0 (x86_64-redhat-linux-gnu) libcurl/7.29.0 NSS/3.44 zlib")
    VersionInfo(version='7.29.0', library='NSS', library_version='3.44')
    """
    first = (text or "").strip().splitlines()[:1]
    line = first[0] if first else ""
    version = re.match(r"curl\s+(\S+)", line)
    for token in _without_brackets(line).split()[1:]:
        name, _, number = token.partition("/")
        library = canonical_library(name)
        if library and library != "none":
            return VersionInfo(version and version.group(1), library, number or None)
    return VersionInfo(version and version.group(1))


def parse_msmtp_version(text: str) -> VersionInfo:
    """``msmtp --version`` names the library but not its version.

    >>> parse_msmtp_version("msmtp version 1.8.23\\nPlatform: x86_64-pc-linux-gnu\\n"
    ...                     "TLS/SSL library: GnuTLS\\n")
    VersionInfo(version='1.8.23', library='GnuTLS', library_version=None)
    """
    version = re.search(r"msmtp version (\S+)", text or "")
    library = re.search(r"TLS/SSL library:\s*(\S+)", text or "")
    name = library and (canonical_library(library.group(1)) or library.group(1))
    return VersionInfo(version and version.group(1), name)


def parse_mutt_version(text: str) -> VersionInfo:
    """``mutt -v``: compile options ``+USE_SSL_GNUTLS`` / ``+USE_SSL_OPENSSL``.

    NeoMutt spells them ``+gnutls`` / ``+openssl`` and prints the library version on a
    line of its own (``OpenSSL: OpenSSL 3.0.11 19 Sep 2023`` or ``GnuTLS: 3.7.9``).

    >>> parse_mutt_version("Mutt 2.2.12 (2023-09-09)\\n-USE_SSL_OPENSSL  +USE_SSL_GNUTLS\\n")
    VersionInfo(version='2.2.12', library='GnuTLS', library_version=None)
    >>> parse_mutt_version("Mutt 1.5.21 (2010-09-15)\\n+USE_SSL_OPENSSL  -USE_SSL_GNUTLS\\n")
    VersionInfo(version='1.5.21', library='OpenSSL', library_version=None)
    """
    text = text or ""
    version = re.search(r"^(?:Neo)?Mutt\s+(\S+)", text, re.MULTILINE)
    flags = set(text.split())
    library = None
    if flags & {"+USE_SSL_GNUTLS", "+gnutls"}:
        library = "GnuTLS"
    elif flags & {"+USE_SSL_OPENSSL", "+openssl"}:
        library = "OpenSSL"
    elif {"-USE_SSL_GNUTLS", "-USE_SSL_OPENSSL"} <= flags:
        library = "none"
    lib_version = None
    line = re.search(r"^(OpenSSL|GnuTLS):\s*(.+)$", text, re.MULTILINE)
    if line and line.group(1) == library:
        banner = parse_openssl_banner(line.group(2))
        lib_version = banner[1] if banner else line.group(2).split()[0]
    return VersionInfo(version and version.group(1), library, lib_version)


def parse_snail_version(text: str) -> VersionInfo:
    """``s-nail -V``, or ``s-nail -:/ -Sverbose -Xversion -Xx`` for features and link line.

    s-nail names no library, but ``+tls``/``-tls`` says whether it has TLS and the verbose
    ``Link:`` line shows what it was linked with.

    >>> parse_snail_version("s-nail v14.9.24, 2022-03-26 (built for Linux)\\n +smtp +tls\\n"
    ...                     "Link: cc -pie -lssl -lcrypto -lidn2")
    VersionInfo(version='14.9.24', library='OpenSSL', library_version=None)
    >>> parse_snail_version("s-nail v14.9.24, 2022-03-26\\n +smtp -tls\\n")
    VersionInfo(version='14.9.24', library='none', library_version=None)
    """
    text = text or ""
    version = re.search(r"s-nail\s+v?(\d+(?:\.\d+)+)", text, re.IGNORECASE)
    tokens = set(text.split())
    library = None
    if "-tls" in tokens:
        library = "none"
    elif "-lssl" in tokens:
        library = "OpenSSL"
    elif "-lgnutls" in tokens:
        library = "GnuTLS"
    return VersionInfo(version and version.group(1), library)


def parse_mailutils_version(text: str) -> VersionInfo:
    """``mail.mailutils --version`` (the same text for ``-V``).

    >>> parse_mailutils_version("mail.mailutils (GNU Mailutils) 3.15\\nCopyright (C) 2007-2022")
    VersionInfo(version='3.15', library=None, library_version=None)
    """
    version = re.search(r"\(GNU Mailutils\)\s+(\S+)", text or "")
    return VersionInfo(version and version.group(1))


def parse_mailutils_config(text: str) -> str | None:
    """The library from ``mail.mailutils --show-config-options`` (mailutils only has GnuTLS).

    >>> parse_mailutils_config("VERSION=3.15\\nWITH_GNUTLS \\t- TLS support using GNU TLS\\n")
    'GnuTLS'
    >>> parse_mailutils_config("VERSION=3.15\\nWITH_GSASL\\n")
    'none'
    """
    if not re.search(r"^VERSION=", text or "", re.MULTILINE):
        return None
    return "GnuTLS" if re.search(r"^WITH_GNUTLS\b", text, re.MULTILINE) else "none"


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


_HEIRLOOM = re.compile(r"^\s*(\d+\.\d+)\s+\d+/\d+/\d+", re.MULTILINE)


def parse_heirloom_version(text: str) -> VersionInfo:
    """Heirloom ``mailx -V`` prints a version and a date only.

    >>> parse_heirloom_version("12.5 7/5/10")
    VersionInfo(version='12.5', library=None, library_version=None)
    """
    match = _HEIRLOOM.search(text or "")
    return VersionInfo(match.group(1) if match else None)


def parse_bsd_usage(text: str) -> bool:
    """bsd-mailx has no version option; ``-V`` makes it print its usage.

    >>> parse_bsd_usage("bsd-mailx: invalid option -- 'V'\\n"
    ...                 "usage: bsd-mailx [-dEIinv] [-a header] [-b bcc-addr] [-c cc-addr]")
    True
    """
    return re.search(r"^usage: \S+ \[-[dEIiNnv]+\]", text or "", re.MULTILINE) is not None


def identify_mailx(text: str) -> str | None:
    """Which mailx a ``mailx -V`` output belongs to: mailutils, heirloom, bsd or snail.

    >>> identify_mailx("mail (GNU Mailutils) 3.15"), identify_mailx("12.5 7/5/10")
    ('mailutils', 'heirloom')
    >>> identify_mailx("s-nail v14.9.24, 2022-03-26"), identify_mailx("mailx: not found")
    ('snail', None)
    """
    if parse_mailutils_version(text).version:
        return "mailutils"
    if parse_heirloom_version(text).version:
        return "heirloom"
    if parse_snail_version(text).version:
        return "snail"
    if parse_bsd_usage(text):
        return "bsd"
    return None
