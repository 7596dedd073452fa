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

import glob
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from .elf import (
    ElfDynamic,
    ldd_ssl_lines,
    parse_ldconfig,
    parse_ldd,
    parse_readelf_dynamic,
    read_elf_dynamic,
)
from .run import RunOutput, run
from .texts import Text, gettext_noop
from .versions import parse_openssl_banner

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

# The README's TLS library table, highest threshold first; below the last row: no TLS 1.2,
# no TLS 1.3.
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
    """(TLS 1.2, TLS 1.3) support per the README's TLS library table: "yes", "partly",
    "no" or "unknown".

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
    note: Text | None = None


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
        return TlsLink(
            "unknown", note=Text(gettext_noop("%(path)s cannot be read"), {"path": path})
        )
    if kind == "script":
        return TlsLink(
            "unknown",
            note=Text(
                gettext_noop("%(name)s is a script (%(line)s): its TLS is that of its interpreter"),
                {"name": name, "line": _first_line(path)},
            ),
        )
    if kind != "elf":
        return TlsLink(
            "unknown", note=Text(gettext_noop("%(name)s is not an ELF binary"), {"name": name})
        )
    dyn, how = elf_dynamic(path, run_fn)
    if dyn is None:
        return TlsLink(
            "unknown",
            note=Text(gettext_noop("%(how)s could not read %(name)s"), {"how": how, "name": name}),
        )
    if not dyn.needed:
        return TlsLink(
            "unknown",
            evidence=[f"{how} {name}: no shared libraries"],
            note=Text(
                gettext_noop(
                    "%(name)s is statically linked: its TLS library cannot be seen from outside"
                ),
                {"name": name},
            ),
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


DPKG_INFO = "/var/lib/dpkg/info"


def _package_named_like(names: Sequence[str]) -> str | None:
    for base in dict.fromkeys(os.path.basename(n) for n in names):
        for listing in glob.glob(os.path.join(DPKG_INFO, glob.escape(base) + "*.list")):
            package = os.path.basename(listing)[: -len(".list")].split(":")[0]
            if package != base:
                continue
            try:
                with open(listing, encoding="utf-8", errors="replace") as fh:
                    files = set(fh.read().splitlines())
            except OSError:
                continue
            if files.intersection(names):
                return package
    return None


def package_version(path: str, run_fn: RunFn | None = None) -> tuple[str, str] | None:
    """(package, Debian version) owning ``path``, via dpkg-query; None off Debian."""
    run_fn = run_fn or plain_run
    names = _dpkg_names(path)
    # A package named like the file (bsd-mailx) is found in its own file list at once;
    # "dpkg-query -S" reads every package's list and costs ~80 ms CPU.
    packages = [p for p in [_package_named_like(names)] if p]
    if not packages:
        for name in names:
            owner = run_fn(["dpkg-query", "-S", name])
            if owner.returncode == 0 and ":" in owner.stdout:
                line = owner.stdout.splitlines()[0]
                packages.append(line.rsplit(": ", 1)[0].split(",")[0].strip())
                break
    for package in packages:
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
