"""Which TLS library a program uses, which version it is, and what that means for TLS 1.2/1.3.

The vendor's manual check is ``ldd $(which CMD) | grep ssl``. ``ldd`` lists every library
loaded, including those pulled in indirectly (curl shows GnuTLS through libldap although
its TLS is OpenSSL; mail.mailutils shows OpenSSL through libsasl2 although its TLS is
GnuTLS). So the library is taken from the program's *own* ``NEEDED`` entries
(``readelf -d``), following one level only through a short list of libraries that do TLS
on the program's behalf (:data:`TLS_CARRIERS`). ``ldd`` is used just to map a soname to
a file. The library's version comes from the library itself, called in a child process.

Everything here is plain Python and runs its subprocesses through :func:`transports.run.run`.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple

from .run import RunOutput, run

TIMEOUT = 5.0
# Version outputs are parsed as English text: msmtp, mutt and mailutils ship translations.
PROBE_ENV = {"LC_ALL": "C"}

RunFn = Callable[[Sequence[str]], RunOutput]

UNKNOWN = ("unknown", "unknown")


def plain_run(argv: Sequence[str]) -> RunOutput:
    """One probe subprocess: short timeout, untranslated output."""
    return run(argv, timeout=TIMEOUT, env=PROBE_ENV)


class CachedRun:
    """A :data:`RunFn` that runs each distinct argv once, however many threads ask.

    Detections running in parallel share calls (``ldd`` of a binary, ``s-nail`` for both
    s-nail rows, the python interpreters); a second caller waits for the first one's result
    instead of starting the same process again.
    """

    def __init__(self, run_fn: RunFn = plain_run) -> None:
        self._run = run_fn
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, ...], Future[RunOutput]] = {}

    def __call__(self, argv: Sequence[str]) -> RunOutput:
        key = tuple(str(a) for a in argv)
        with self._lock:
            future = self._calls.get(key)
            owner = future is None
            if future is None:
                future = self._calls[key] = Future()
        if owner:
            try:
                future.set_result(self._run(key))
            except BaseException as exc:
                future.set_exception(exc)
                raise
        return future.result()


# ---------------------------------------------------------------------------------------
# Verdict


_VERSION_NUMBER = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")

# DESIGN.md's table, highest threshold first; below the last row: no TLS 1.2, no TLS 1.3.
_TABLE: dict[str, tuple[tuple[tuple[int, int, int], str, str], ...]] = {
    "openssl": (((1, 1, 1), "yes", "yes"), ((1, 0, 1), "yes", "no"), ((1, 0, 0), "partly", "no")),
    "gnutls": (((3, 6, 0), "yes", "yes"), ((3, 0, 0), "yes", "no")),
}


def parse_version(version: str | None) -> tuple[int, int, int] | None:
    """The numeric part of a library version; letters after it are patch levels.

    >>> parse_version("1.0.2k-fips"), parse_version("0.9.8zh"), parse_version("3.7")
    ((1, 0, 2), (0, 9, 8), (3, 7, 0))
    >>> parse_version("n/a") is None
    True
    """
    match = _VERSION_NUMBER.search(version or "")
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def verdict(library: str | None, version: str | None) -> tuple[str, str]:
    """(TLS 1.2, TLS 1.3) support per DESIGN.md: "yes", "partly", "no" or "unknown".

    Only OpenSSL and GnuTLS are in the vendor's table; anything else, or a version that
    cannot be read, is ("unknown", "unknown"). "none" (no TLS library) is ("no", "no").

    >>> verdict("OpenSSL", "1.0.2k"), verdict("OpenSSL", "3.0.19"), verdict("GnuTLS", "3.7.9")
    (('yes', 'no'), ('yes', 'yes'), ('yes', 'yes'))
    >>> verdict("OpenSSL", "0.9.8zh"), verdict("LibreSSL", "3.3.6"), verdict("GnuTLS", None)
    (('no', 'no'), ('unknown', 'unknown'), ('unknown', 'unknown'))
    """
    name = (library or "").strip().lower()
    if name == "none":
        return ("no", "no")
    rows = _TABLE.get(name)
    parsed = parse_version(version)
    if rows is None or parsed is None:
        return UNKNOWN
    for minimum, tls12, tls13 in rows:
        if parsed >= minimum:
            return (tls12, tls13)
    return ("no", "no")


# ---------------------------------------------------------------------------------------
# Parsers of version outputs (pure functions)


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


def parse_postconf_version(text: str) -> VersionInfo:
    """``postconf -d mail_version``.

    >>> parse_postconf_version("mail_version = 3.7.11")
    VersionInfo(version='3.7.11', library=None, library_version=None)
    """
    return VersionInfo(parse_assignments(text).get("mail_version") or None)


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


# ---------------------------------------------------------------------------------------
# ELF dynamic section, ldd, ldconfig


@dataclass
class ElfDynamic:
    """The parts of an ELF dynamic section we need."""

    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)  # RUNPATH and RPATH directories
    has_dynamic: bool = True


_READELF_ENTRY = re.compile(r"\((NEEDED|RUNPATH|RPATH)\)\s+[^\[]*\[([^\]]*)\]")


def parse_readelf_dynamic(text: str) -> ElfDynamic:
    """``readelf -d FILE``: NEEDED sonames and RUNPATH/RPATH directories.

    >>> parse_readelf_dynamic(
    ...     " 0x0000000000000001 (NEEDED)             Shared library: [libssl.so.3]\\n"
    ...     " 0x000000000000001d (RUNPATH)            Library runpath: [/usr/lib/postfix]\\n")
    ElfDynamic(needed=['libssl.so.3'], runpath=['/usr/lib/postfix'], has_dynamic=True)
    >>> parse_readelf_dynamic("\\nThere is no dynamic section in this file.\\n").has_dynamic
    False
    """
    dyn = ElfDynamic(has_dynamic="no dynamic section" not in (text or ""))
    for kind, value in _READELF_ENTRY.findall(text or ""):
        if kind == "NEEDED":
            dyn.needed.append(value)
        else:
            dyn.runpath.extend(d for d in value.split(":") if d)
    return dyn


_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 1, 5, 15, 29


def read_elf_dynamic(path: str) -> ElfDynamic | None:
    """Read the dynamic section without binutils (``readelf`` is missing on many servers).

    None when the file is not an ELF file this parser understands.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        return _elf_dynamic(data)
    except (OSError, struct.error, ValueError, IndexError):
        return None


def _elf_dynamic(data: bytes) -> ElfDynamic | None:
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return None
    wide = {1: False, 2: True}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if wide is None or order is None:
        return None
    if wide:
        (phoff,) = struct.unpack_from(order + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(order + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
    segments = []  # (type, file offset, virtual address, size in file)
    for i in range(phnum):
        at = phoff + i * phentsize
        if wide:
            p_type, _, offset, vaddr, _, filesz = struct.unpack_from(order + "IIQQQQ", data, at)
        else:
            p_type, offset, vaddr, _, filesz = struct.unpack_from(order + "IIIII", data, at)
        segments.append((p_type, offset, vaddr, filesz))
    dynamic = next(((off, size) for kind, off, _, size in segments if kind == _PT_DYNAMIC), None)
    if dynamic is None:
        return ElfDynamic(has_dynamic=False)
    entry = order + ("qQ" if wide else "iI")
    step = struct.calcsize(entry)
    entries = []
    for at in range(dynamic[0], dynamic[0] + dynamic[1], step):
        tag, value = struct.unpack_from(entry, data, at)
        if tag == 0:
            break
        entries.append((tag, value))
    strtab_addr = next((value for tag, value in entries if tag == _DT_STRTAB), None)
    strtab = next(
        (
            off + strtab_addr - vaddr
            for kind, off, vaddr, size in segments
            if kind == _PT_LOAD and strtab_addr is not None and vaddr <= strtab_addr < vaddr + size
        ),
        None,
    )
    if strtab is None:
        return None

    def string(offset: int) -> str:
        start = strtab + offset
        return data[start : data.index(b"\0", start)].decode("utf-8", "replace")

    dyn = ElfDynamic()
    for tag, value in entries:
        if tag == _DT_NEEDED:
            dyn.needed.append(string(value))
        elif tag in (_DT_RPATH, _DT_RUNPATH):
            dyn.runpath.extend(d for d in string(value).split(":") if d)
    return dyn


_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)")


def parse_ldd(text: str) -> dict[str, str | None]:
    """``ldd FILE``: soname -> path (None for "not found").

    >>> parse_ldd("\\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f)\\n"
    ...           "\\tlinux-vdso.so.1 (0x00007ffd)\\n\\tlibfoo.so.1 => not found\\n")
    {'libssl.so.3': '/lib/x86_64-linux-gnu/libssl.so.3', 'libfoo.so.1': None}
    """
    found: dict[str, str | None] = {}
    for line in (text or "").splitlines():
        match = _LDD_LINE.match(line)
        if match:
            name, path = match.groups()
            found[name] = path if path.startswith("/") else None
    return found


def ldd_ssl_lines(text: str) -> str:
    """What ``ldd FILE | grep ssl`` prints, given ldd's output.

    >>> ldd_ssl_lines("\\tlibz.so.1 => /lib/libz.so.1 (0x1)\\n"
    ...               "\\tlibssl.so.3 => /lib/libssl.so.3 (0x2)\\n")
    '\\tlibssl.so.3 => /lib/libssl.so.3 (0x2)'
    """
    return "\n".join(line for line in (text or "").splitlines() if "ssl" in line)


def parse_ldconfig(text: str) -> dict[str, str]:
    """``ldconfig -p``: soname -> path, first entry wins (the cache lists the preferred first).

    >>> parse_ldconfig("\\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3\\n")
    {'libssl.so.3': '/lib/x86_64-linux-gnu/libssl.so.3'}
    """
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        match = re.match(r"^\s*(\S+)\s+\([^)]*\)\s+=>\s+(\S+)", line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found


# ---------------------------------------------------------------------------------------
# Library resolution

# Order matters: NSS ships a libssl3.so that is not OpenSSL's libssl.so.3. libcrypto alone
# is not a TLS library (postfix's smtp links it for hashing; its TLS is in libpostfix-tls).
_TLS_SONAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^lib(?:nss3|ssl3)\.so"), "NSS"),
    (re.compile(r"^libssl\.so"), "OpenSSL"),
    (re.compile(r"^libgnutls[\w-]*\.so"), "GnuTLS"),
    (re.compile(r"^libwolfssl\.so"), "wolfSSL"),
    (re.compile(r"^libmbedtls\.so"), "mbedTLS"),
)

# Libraries that do TLS on the program's behalf, followed one level deep when the program
# links no TLS library itself. Deliberately short: following every NEEDED library is what
# makes ldd wrong (libldap brings GnuTLS into curl, libsasl2/libmariadb bring OpenSSL into
# mailutils, and neither program does its TLS through them).
#   libcurl*        curl (libcurl.so.4, libcurl-gnutls.so.4, libcurl-nss.so.4)
#   libpostfix-tls  postfix's smtp daemon
#   libesmtp        esmtp and other libESMTP clients
#   libtls          LibreSSL's libtls (msmtp can be built with it)
TLS_CARRIERS = re.compile(r"^(?:libcurl[\w-]*|libpostfix-tls|libesmtp|libtls)\.so")


def tls_family(soname: str) -> str | None:
    """The TLS library a soname belongs to, or None.

    >>> tls_family("libssl.so.1.0.0"), tls_family("libssl3.so"), tls_family("libcrypto.so.3")
    ('OpenSSL', 'NSS', None)
    """
    return next((name for pattern, name in _TLS_SONAMES if pattern.match(soname)), None)


@dataclass
class TlsLink:
    """The TLS library a file uses, as far as its links tell."""

    library: str  # "OpenSSL", "LibreSSL", "GnuTLS", "NSS", ..., "none", "unknown"
    version: str | None = None
    soname: str | None = None
    path: str | None = None  # the library file
    evidence: list[str] = field(default_factory=list)
    note: str = ""


def file_kind(path: str) -> str:
    """The kind of file: "elf", "script", "missing" or "other", from its first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return "missing"
    if head == b"\x7fELF":
        return "elf"
    return "script" if head.startswith(b"#!") else "other"


def _first_line(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.readline(200).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def elf_dynamic(path: str, run_fn: RunFn) -> tuple[ElfDynamic | None, str]:
    """The dynamic section of ``path`` and how it was read ("readelf -d" or a fallback)."""
    out = run_fn(["readelf", "-d", path])
    if out.returncode == 0:
        return parse_readelf_dynamic(out.stdout), "readelf -d"
    if out.error or out.timed_out:
        # No binutils (or readelf hung): read the ELF file ourselves.
        return read_elf_dynamic(path), "ELF dynamic section"
    return None, "readelf -d"


def _runpath_dirs(dyn: ElfDynamic, owner: str) -> list[str]:
    origin = os.path.dirname(os.path.realpath(owner))
    return [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in dyn.runpath]


def locate_library(
    soname: str, binary: str, run_fn: RunFn, search: Sequence[str] = ()
) -> str | None:
    """A soname as a file: from ``ldd`` of the binary, else RUNPATH dirs, else ``ldconfig -p``."""
    path = parse_ldd(run_fn(["ldd", binary]).stdout).get(soname)
    if path:
        return path
    for directory in search:
        candidate = os.path.join(directory, soname)
        if os.path.exists(candidate):
            return candidate
    return parse_ldconfig(run_fn(["ldconfig", "-p"]).stdout).get(soname)


def _first_tls(needed: Iterable[str]) -> str | None:
    return next((s for s in needed if tls_family(s)), None)


def resolve_tls_library(
    path: str, run_fn: RunFn | None = None, *, with_version: bool = True
) -> TlsLink:
    """The TLS library ``path`` (a program or a module such as ``_ssl*.so``) really uses.

    Never raises: a script, a static binary or an unreadable file gives "unknown" with a note.
    """
    run_fn = run_fn or CachedRun()
    name = os.path.basename(path)
    kind = file_kind(path)
    if kind == "missing":
        return TlsLink("unknown", note=f"{path} cannot be read")
    if kind == "script":
        return TlsLink(
            "unknown",
            note=f"{name} is a script ({_first_line(path)}): its TLS is that of its interpreter",
        )
    if kind != "elf":
        return TlsLink("unknown", note=f"{name} is not an ELF binary")
    dyn, how = elf_dynamic(path, run_fn)
    if dyn is None:
        return TlsLink("unknown", note=f"{how} could not read {name}")
    if not dyn.needed:
        return TlsLink(
            "unknown",
            evidence=[f"{how} {name}: no shared libraries"],
            note=f"{name} is statically linked: its TLS library cannot be seen from outside",
        )
    link = _link_of(path, dyn, how, run_fn)
    if with_version and link.path and link.library not in ("none", "unknown"):
        found = library_versions([(link.library, link.path)], run_fn).get(link.path)
        if found:
            link.library, link.version = found.library, found.version
            link.evidence.append(found.how)
    return link


def _link_of(path: str, dyn: ElfDynamic, how: str, run_fn: RunFn) -> TlsLink:
    name = os.path.basename(path)
    search = _runpath_dirs(dyn, path)
    direct = [s for s in dyn.needed if tls_family(s)]
    if direct:
        soname = direct[0]
        located = locate_library(soname, path, run_fn, search)
        return TlsLink(
            tls_family(soname) or "unknown",
            soname=soname,
            path=located,
            evidence=[f"{how} {name}: {', '.join(direct)}"],
        )
    for carrier in (s for s in dyn.needed if TLS_CARRIERS.match(s)):
        carrier_path = locate_library(carrier, path, run_fn, search)
        if not carrier_path:
            continue
        carrier_dyn, carrier_how = elf_dynamic(carrier_path, run_fn)
        soname = _first_tls(carrier_dyn.needed) if carrier_dyn else None
        if soname and carrier_dyn:
            located = locate_library(
                soname, path, run_fn, search + _runpath_dirs(carrier_dyn, carrier_path)
            )
            return TlsLink(
                tls_family(soname) or "unknown",
                soname=soname,
                path=located,
                evidence=[
                    f"{how} {name}: {carrier} (no TLS library of its own)",
                    f"{carrier_how} {carrier}: {soname}",
                ],
            )
    return TlsLink("none", evidence=[f"{how} {name}: no TLS library among {', '.join(dyn.needed)}"])


def vendor_ldd_line(path: str, run_fn: RunFn | None = None) -> str:
    """Exactly what the vendor's ``ldd PATH | grep ssl`` prints (without a shell)."""
    return ldd_ssl_lines((run_fn or plain_run)(["ldd", path]).stdout)


# ---------------------------------------------------------------------------------------
# Library version: ask the library itself


@dataclass(frozen=True)
class LibraryVersion:
    library: str  # the library's own name for itself: an OpenSSL soname may be LibreSSL
    version: str | None
    how: str  # one evidence line


# Per family: (symbol, argument kind), tried in order. OpenSSL_version(0) exists from 1.1.0,
# SSLeay_version(0) before; both return the OPENSSL_VERSION banner.
_VERSION_CALLS: dict[str, tuple[tuple[str, str], ...]] = {
    "OpenSSL": (("OpenSSL_version", "int"), ("SSLeay_version", "int")),
    "GnuTLS": (("gnutls_check_version", "ptr"),),
    "NSS": (("NSS_GetVersion", "void"),),
    "wolfSSL": (("wolfSSL_lib_version", "void"),),
}

# Runs in a child so a library that crashes or clashes with ours cannot hurt this process.
# dlsym on libssl's handle also searches its dependencies, so OpenSSL_version is found in
# the very libcrypto this libssl loads.
_VERSION_SCRIPT = r"""
import ctypes, json, sys
result = {}
for path, calls in json.loads(sys.argv[1]):
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        result[path] = {"error": str(exc)}
        continue
    for symbol, kind in calls:
        fn = getattr(lib, symbol, None)
        if fn is None:
            continue
        fn.restype = ctypes.c_char_p
        fn.argtypes = {"int": [ctypes.c_int], "ptr": [ctypes.c_char_p], "void": []}[kind]
        text = fn(*{"int": [0], "ptr": [None], "void": []}[kind])
        result[path] = {"symbol": symbol, "text": (text or b"").decode("utf-8", "replace")}
        break
print(json.dumps(result))
"""

_version_lock = threading.Lock()
_version_cache: dict[tuple[object, ...], Future[LibraryVersion | None]] = {}


def _file_key(path: str) -> tuple[object, ...] | None:
    # A package upgrade replaces the file in place (libssl3 3.0.19 -> 3.0.22 under the same
    # name); the inode and mtime change with it, so a long-running worker notices.
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return (real, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _from_call(family: str, text: str, symbol: str, path: str) -> LibraryVersion | None:
    text = text.strip()
    if not text:
        return None
    how = f"{os.path.basename(path)}: {symbol}() = {text}"
    if family == "OpenSSL":
        banner = parse_openssl_banner(text)
        return LibraryVersion(banner[0], banner[1], how) if banner else None
    return LibraryVersion(family, text.split()[0], how)


def _call_libraries(libs: Sequence[tuple[str, str]], run_fn: RunFn) -> dict[str, LibraryVersion]:
    if not sys.executable:
        return {}  # embedded interpreter (e.g. uwsgi): no python to start
    request = [[path, _VERSION_CALLS[family]] for family, path in libs]
    out = run_fn([sys.executable, "-I", "-S", "-c", _VERSION_SCRIPT, json.dumps(request)])
    try:
        answers = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    found: dict[str, LibraryVersion] = {}
    for family, path in libs:
        answer = answers.get(path) or {}
        version = _from_call(family, answer.get("text", ""), answer.get("symbol", ""), path)
        if version:
            found[path] = version
    return found


def upstream_version(debian_version: str) -> str:
    """A Debian package version without epoch and Debian revision.

    >>> upstream_version("3.0.22-1~deb12u2"), upstream_version("1:2.3-4"), upstream_version("7")
    ('3.0.22', '2.3', '7')
    """
    version = re.sub(r"^\d+:", "", debian_version.strip())
    return version.rsplit("-", 1)[0] if "-" in version else version


def _dpkg_names(path: str) -> list[str]:
    # dpkg knows a file under the name its package ships it; with merged /usr that may be
    # /lib/... or /usr/lib/... whatever ldd or realpath says.
    names = [path, os.path.realpath(path)]
    for name in list(names):
        if name.startswith("/usr/"):
            names.append(name[4:])
        elif name.startswith(("/lib", "/bin", "/sbin")):
            names.append("/usr" + name)
    return list(dict.fromkeys(names))


def package_version(path: str, run_fn: RunFn | None = None) -> tuple[str, str] | None:
    """(package, Debian version) owning ``path``, via dpkg-query; None off Debian."""
    run_fn = run_fn or plain_run
    for name in _dpkg_names(path):
        owner = run_fn(["dpkg-query", "-S", name])
        if owner.returncode != 0 or ":" not in owner.stdout:
            continue
        package = owner.stdout.splitlines()[0].rsplit(": ", 1)[0].split(",")[0].strip()
        version = run_fn(["dpkg-query", "-W", "-f", "${Version}", package])
        if version.returncode == 0 and version.stdout.strip():
            return package, version.stdout.strip()
    return None


def _from_dpkg(family: str, path: str, run_fn: RunFn) -> LibraryVersion | None:
    owned = package_version(path, run_fn)
    if owned is None:
        return None
    package, version = owned
    return LibraryVersion(family, upstream_version(version), f"dpkg: {package} {version}")


def library_versions(
    libs: Iterable[tuple[str, str]], run_fn: RunFn | None = None
) -> dict[str, LibraryVersion | None]:
    """Versions of several libraries, given as (family, path), in one child process.

    Cached per library file for the life of the process; threads asking for a library
    that is being probed wait for that probe. Falls back to dpkg when the call fails.
    """
    run_fn = run_fn or plain_run
    wanted: dict[str, Future[LibraryVersion | None]] = {}
    mine: list[tuple[str, str, tuple[object, ...]]] = []
    with _version_lock:
        for family, path in libs:
            key = _file_key(path)
            if key is None or family not in _VERSION_CALLS:
                wanted[path] = Future()
                wanted[path].set_result(None)
                continue
            future = _version_cache.get(key)
            if future is None:
                future = _version_cache[key] = Future()
                mine.append((family, path, key))
            wanted[path] = future
    if mine:
        try:
            called = _call_libraries([(family, path) for family, path, _ in mine], run_fn)
            for family, path, key in mine:
                result = called.get(path) or _from_dpkg(family, path, run_fn)
                wanted[path].set_result(result)
                if result is None:  # maybe a timeout: let the next probe try again
                    _forget(key)
        except BaseException as exc:
            for _, path, key in mine:
                if not wanted[path].done():
                    wanted[path].set_exception(exc)
                _forget(key)
            raise
    return {path: future.result() for path, future in wanted.items()}


def _forget(key: tuple[object, ...]) -> None:
    with _version_lock:
        _version_cache.pop(key, None)


def clear_version_cache() -> None:
    """Forget every library version (tests; after an upgrade the file key changes anyway)."""
    with _version_lock:
        _version_cache.clear()
