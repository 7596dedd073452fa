"""transports.tlsinfo on this machine's real binaries and on made-up outputs of old libraries."""

from __future__ import annotations

import doctest
import os
import shutil
import struct
import sys
import threading
import time
from collections.abc import Sequence

import pytest

from transports import elf, tlsinfo, versions
from transports.elf import (
    parse_ldd,
    parse_readelf_dynamic,
    read_elf_dynamic,
)
from transports.run import RunOutput, run
from transports.tlsinfo import (
    CachedRun,
    library_versions,
    resolve_tls_library,
    tls_family,
    vendor_ldd_line,
    verdict,
)
from transports.versions import parse_exim_version, parse_openssl_banner


def need(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


class Counting:
    """A run function that records every argv it is asked to run."""

    def __init__(self, inner: tlsinfo.RunFn = tlsinfo.plain_run) -> None:
        self.inner = inner
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    def __call__(self, argv: Sequence[str]) -> RunOutput:
        with self._lock:
            self.calls.append(tuple(argv))
        return self.inner(argv)

    def count(self, program: str) -> int:
        return sum(1 for argv in self.calls if argv[0] == program)


@pytest.fixture
def fresh_versions():
    tlsinfo.clear_version_cache()
    yield
    tlsinfo.clear_version_cache()


def test_docstring_examples():
    results = [doctest.testmod(module) for module in (tlsinfo, versions, elf)]
    # The parsers of one command each run in test_detection.py, with their module.
    assert sum(r.attempted for r in results) >= 15
    assert sum(r.failed for r in results) == 0


# --- verdict: the README's TLS library table -------------------------------------------


@pytest.mark.parametrize(
    ("library", "version", "expected"),
    [
        ("OpenSSL", "0.9.8zh", ("no", "no")),
        ("OpenSSL", "0.9.8", ("no", "no")),
        ("OpenSSL", "1.0.0", ("partly", "no")),
        ("OpenSSL", "1.0.0t", ("partly", "no")),
        ("OpenSSL", "1.0.1", ("yes", "no")),
        ("OpenSSL", "1.0.2k", ("yes", "no")),
        ("OpenSSL", "1.0.2k-fips", ("yes", "no")),
        ("OpenSSL", "1.1.0l", ("yes", "no")),
        ("OpenSSL", "1.1.1", ("yes", "yes")),
        ("OpenSSL", "1.1.1w", ("yes", "yes")),
        ("OpenSSL", "3.0.19", ("yes", "yes")),
        ("openssl", "3.5.0", ("yes", "yes")),
        ("GnuTLS", "2.12.23", ("no", "no")),
        ("GnuTLS", "3.0", ("yes", "no")),
        ("GnuTLS", "3.4.10", ("yes", "no")),
        ("GnuTLS", "3.6.0", ("yes", "yes")),
        ("GnuTLS", "3.7.9", ("yes", "yes")),
        ("none", None, ("no", "no")),
    ],
)
def test_verdict_table(library, version, expected):
    assert verdict(library, version) == expected


@pytest.mark.parametrize(
    ("library", "version"),
    [
        ("LibreSSL", "3.3.6"),
        ("NSS", "3.87.1"),
        ("wolfSSL", "5.5.4"),
        ("mbedTLS", "2.28.3"),
        ("BoringSSL", None),
        ("unknown", None),
        (None, None),
        ("", "1.1.1"),
        ("OpenSSL", None),
        ("OpenSSL", "garbage"),
        ("GnuTLS", ""),
    ],
)
def test_verdict_unknown_never_raises(library, version):
    assert verdict(library, version) == ("unknown", "unknown")


# --- parsers on made-up outputs of libraries this machine lacks -------------------------


def test_python_and_perl_banners_use_the_openssl_parser():
    import ssl

    assert parse_openssl_banner(ssl.OPENSSL_VERSION)[0] in ("OpenSSL", "LibreSSL")
    out = run(
        [need("perl"), "-MNet::SSLeay", "-e", "print Net::SSLeay::SSLeay_version(0)"], timeout=5
    )
    if out.returncode != 0:
        pytest.skip("Net::SSLeay is not installed")
    assert parse_openssl_banner(out.stdout)[0] == "OpenSSL"


@pytest.mark.parametrize(
    ("runtime", "library", "version", "expected"),
    [
        (
            "GnuTLS: Compile: 2.12.20\n                         Runtime: 2.12.23",
            "GnuTLS",
            "2.12.23",
            ("no", "no"),
        ),
        (
            "GnuTLS: Compile: 3.4.10\n                         Runtime: 3.4.10",
            "GnuTLS",
            "3.4.10",
            ("yes", "no"),
        ),
        (
            "OpenSSL: Compile: OpenSSL 1.0.2k-fips  26 Jan 2017\n"
            "                          Runtime: OpenSSL 1.0.2k-fips  26 Jan 2017",
            "OpenSSL",
            "1.0.2k-fips",
            ("yes", "no"),
        ),
    ],
)
def test_exim_versions(runtime, library, version, expected):
    text = (
        "Exim version 4.92 #3 built 13-Jul-2021 16:59:24\n"
        "Copyright (c) University of Cambridge, 1995 - 2018\n"
        f"Support for: crypteq iconv() IPv6 PAM {library} move_frozen_messages DKIM DNSSEC\n"
        f"Library version: {runtime}\n"
    )
    info = parse_exim_version(text)
    assert info == ("4.92", library, version)
    assert verdict(info.library, info.library_version) == expected


# --- sonames, ldd, readelf --------------------------------------------------------------


@pytest.mark.parametrize(
    ("soname", "family"),
    [
        ("libssl.so.3", "OpenSSL"),
        ("libssl.so.1.1", "OpenSSL"),
        ("libssl.so.1.0.0", "OpenSSL"),
        ("libssl.so.10", "OpenSSL"),  # RHEL 7
        ("libssl3.so", "NSS"),
        ("libnss3.so", "NSS"),
        ("libgnutls.so.26", "GnuTLS"),
        ("libgnutls.so.30", "GnuTLS"),
        ("libgnutls-openssl.so.27", "GnuTLS"),
        ("libwolfssl.so.35", "wolfSSL"),
        ("libmbedtls.so.14", "mbedTLS"),
        ("libcrypto.so.3", None),
        ("libcurl.so.4", None),
        ("libsasl2.so.2", None),
    ],
)
def test_tls_family(soname, family):
    assert tls_family(soname) == family


def test_carriers_are_a_short_explicit_list():
    carriers = [
        "libcurl.so.4",
        "libcurl-gnutls.so.4",
        "libcurl-nss.so.4",
        "libpostfix-tls.so",
        "libesmtp.so.6",
        "libtls.so.26",
    ]
    others = [
        "libldap-2.5.so.0",
        "libsasl2.so.2",
        "libmariadb.so.3",
        "libgsasl.so.18",
        "libpostfix-global.so",
        "librtmp.so.1",
    ]
    assert all(tlsinfo.TLS_CARRIERS.match(s) for s in carriers)
    assert not any(tlsinfo.TLS_CARRIERS.match(s) for s in others)


FAKE_LDD_MAILUTILS = """\
\tlinux-vdso.so.1 (0x00007ffc6a5f2000)
\tlibgnutls.so.30 => /lib/x86_64-linux-gnu/libgnutls.so.30 (0x00007f14dd200000)
\tlibsasl2.so.2 => /lib/x86_64-linux-gnu/libsasl2.so.2 (0x00007f14dd1e0000)
\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f14dd444000)
\tlibmissing.so.1 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f14dd5e2000)
"""


def test_fake_ldd_lines():
    found = parse_ldd(FAKE_LDD_MAILUTILS)
    assert found["libssl.so.3"] == "/lib/x86_64-linux-gnu/libssl.so.3"
    assert found["libmissing.so.1"] is None
    assert "linux-vdso.so.1" not in found
    # The vendor's grep sees OpenSSL here although the program's TLS is GnuTLS.
    assert elf.ldd_ssl_lines(FAKE_LDD_MAILUTILS) == (
        "\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f14dd444000)"
    )


def test_fake_readelf_old_gnutls():
    dyn = parse_readelf_dynamic(
        "Dynamic section at offset 0x2ddf8 contains 29 entries:\n"
        "  Tag        Type                         Name/Value\n"
        " 0x0000000000000001 (NEEDED)             Shared library: [libgnutls.so.26]\n"
        " 0x0000000000000001 (NEEDED)             Shared library: [libgsasl.so.7]\n"
        " 0x000000000000000f (RPATH)              Library rpath: [/opt/a:/opt/b]\n"
    )
    assert dyn.needed == ["libgnutls.so.26", "libgsasl.so.7"]
    assert dyn.runpath == ["/opt/a", "/opt/b"]
    assert tls_family(dyn.needed[0]) == "GnuTLS"


# --- resolution on this machine's real binaries -----------------------------------------


def test_curl_is_openssl_although_ldd_lists_gnutls():
    curl = need("curl")
    ldd = run(["ldd", curl], timeout=5).stdout
    if "libgnutls" not in ldd:
        pytest.skip("this curl pulls in no GnuTLS indirectly")
    link = resolve_tls_library(curl)
    assert link.library == "OpenSSL"
    assert link.soname and link.soname.startswith("libssl.so")
    assert any("libcurl" in e and "no TLS library of its own" in e for e in link.evidence)
    assert verdict(link.library, link.version) == ("yes", "yes")


@pytest.mark.parametrize("name", ["msmtp", "mutt", "mail.mailutils"])
def test_gnutls_programs(name):
    link = resolve_tls_library(need(name))
    assert link.library == "GnuTLS"
    assert link.soname == "libgnutls.so.30"
    assert tlsinfo.parse_version(link.version) is not None
    assert link.evidence[0] == f"readelf -d {name}: libgnutls.so.30"


def test_mailutils_vendor_line_shows_openssl_but_tls_is_gnutls():
    path = need("mail.mailutils")
    line = vendor_ldd_line(path)
    assert "libssl" in line  # via libsasl2/libldap, not used for TLS
    assert resolve_tls_library(path).library == "GnuTLS"


@pytest.mark.parametrize("name", ["s-nail", "openssl"])
def test_openssl_programs(name):
    link = resolve_tls_library(need(name))
    assert link.library == "OpenSSL"
    assert link.soname == "libssl.so.3"
    assert link.evidence[-1].startswith("libssl.so.3: OpenSSL_version() = OpenSSL 3.")


def test_postfix_smtp_through_libpostfix_tls():
    smtp = "/usr/lib/postfix/sbin/smtp"
    if not os.path.exists(smtp):
        pytest.skip("postfix is not installed")
    link = resolve_tls_library(smtp)
    assert link.library == "OpenSSL"
    assert link.evidence[:2] == [
        "readelf -d smtp: libpostfix-tls.so (no TLS library of its own)",
        "readelf -d libpostfix-tls.so: libssl.so.3",
    ]


def test_bsd_mailx_links_no_tls():
    link = resolve_tls_library(need("bsd-mailx"))
    assert link.library == "none"
    assert verdict(link.library, link.version) == ("no", "no")


def without_addresses(text: str) -> list[str]:
    return [line.split(" (0x")[0] for line in text.splitlines()]


def test_vendor_line_is_ldd_grep_ssl():
    curl = need("curl")
    ldd = run(["ldd", curl], timeout=5).stdout
    expected = "\n".join(x for x in ldd.splitlines() if "ssl" in x)
    # ldd prints load addresses that change from run to run (ASLR): compare without them.
    assert without_addresses(vendor_ldd_line(curl)) == without_addresses(expected)
    assert vendor_ldd_line(need("msmtp")) == ""  # GnuTLS has no "ssl" in its name


# --- files that are not dynamic binaries ------------------------------------------------


def test_shell_script_is_unknown(tmp_path):
    script = tmp_path / "fake-mailer"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    link = resolve_tls_library(str(script))
    assert link.library == "unknown"
    assert "script (#!/bin/sh)" in str(link.note)
    assert verdict(link.library, link.version) == ("unknown", "unknown")
    assert vendor_ldd_line(str(script)) == ""


def test_static_pie_is_unknown():
    ldconfig = "/sbin/ldconfig"
    dyn = read_elf_dynamic(ldconfig) if os.path.exists(ldconfig) else None
    if dyn is None or dyn.needed:
        pytest.skip("no statically linked /sbin/ldconfig here")
    link = resolve_tls_library(ldconfig)
    assert link.library == "unknown"
    assert "statically linked" in str(link.note)


def minimal_elf() -> bytes:
    """An ELF64 header with no program headers at all: no dynamic section, like a static binary."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 0, 0, 0, 64, 56, 0, 64, 0, 0)
    return ident + header


def test_static_binary_without_dynamic_section_is_unknown(tmp_path):
    binary = tmp_path / "static-tool"
    binary.write_bytes(minimal_elf())
    binary.chmod(0o755)
    assert read_elf_dynamic(str(binary)).has_dynamic is False
    link = resolve_tls_library(str(binary))
    assert link.library == "unknown"
    assert "statically linked" in str(link.note)


@pytest.mark.parametrize("content", [b"", b"plain text", b"\x7fELF\x09garbage"])
def test_odd_files_never_crash(tmp_path, content):
    odd = tmp_path / "odd"
    odd.write_bytes(content)
    assert resolve_tls_library(str(odd)).library == "unknown"
    assert read_elf_dynamic(str(odd)) is None


def test_missing_file_is_unknown(tmp_path):
    link = resolve_tls_library(str(tmp_path / "nothing"))
    assert link.library == "unknown" and str(link.note) == f"{tmp_path / 'nothing'} cannot be read"


# --- readelf fallback -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["curl", "msmtp", "s-nail", "bsd-mailx", "perl"])
def test_python_elf_reader_matches_readelf(name):
    path = need(name)
    by_readelf = parse_readelf_dynamic(run(["readelf", "-d", path], timeout=5).stdout)
    assert read_elf_dynamic(path) == by_readelf


def test_without_readelf_the_file_is_read_directly():
    def no_readelf(argv: Sequence[str]) -> RunOutput:
        if argv[0] == "readelf":
            return RunOutput(list(argv), None, "", "", 0.0, error="No such file or directory")
        return tlsinfo.plain_run(argv)

    link = resolve_tls_library(need("curl"), no_readelf)
    assert link.library == "OpenSSL"
    assert link.evidence[0] == "ELF dynamic section curl: libcurl.so.4 (no TLS library of its own)"


# --- library versions -------------------------------------------------------------------


def lib(soname: str) -> str:
    path = elf.parse_ldconfig(run(["ldconfig", "-p"], timeout=5).stdout).get(soname)
    if path is None:
        pytest.skip(f"{soname} is not installed")
    return path


def test_library_versions_in_one_child(fresh_versions):
    libs = [
        ("OpenSSL", lib("libssl.so.3")),
        ("GnuTLS", lib("libgnutls.so.30")),
        ("NSS", lib("libnss3.so")),
    ]
    counting = Counting()
    found = library_versions(libs, counting)
    assert counting.count(sys.executable) == 1
    openssl, gnutls, nss = (found[path] for _, path in libs)
    assert openssl.library == "OpenSSL" and openssl.version.startswith("3.")
    assert gnutls.library == "GnuTLS" and gnutls.version.startswith("3.")
    assert nss.library == "NSS" and verdict(nss.library, nss.version) == ("unknown", "unknown")
    # Cached per file: asking again starts nothing.
    again = library_versions(libs, counting)
    assert again == found
    assert counting.count(sys.executable) == 1


def test_library_version_matches_python_ssl(fresh_versions):
    import ssl

    path = lib("libssl.so.3")
    found = library_versions([("OpenSSL", path)])[path]
    banner = parse_openssl_banner(ssl.OPENSSL_VERSION)
    if banner is None or banner[1] != found.version:
        pytest.skip("this python's ssl module has an OpenSSL of its own")
    assert found.how == f"libssl.so.3: OpenSSL_version() = {ssl.OPENSSL_VERSION}"


def test_library_version_falls_back_to_dpkg(fresh_versions):
    need("dpkg-query")

    def python_broken(argv: Sequence[str]) -> RunOutput:
        if argv[0] == sys.executable:
            return RunOutput(list(argv), 1, "", "Segmentation fault", 0.0)
        return tlsinfo.plain_run(argv)

    path = lib("libgnutls.so.30")
    found = library_versions([("GnuTLS", path)], python_broken)[path]
    assert found.library == "GnuTLS"
    assert found.how.startswith("dpkg: libgnutls30")
    assert verdict(found.library, found.version) == ("yes", "yes")
    # A good answer is cached whichever way it was found.
    assert library_versions([("GnuTLS", path)])[path] == found


def test_concurrent_callers_share_one_version_probe(fresh_versions):
    counting = Counting()
    path = lib("libssl.so.3")
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(library_versions([("OpenSSL", path)], counting))
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counting.count(sys.executable) == 1
    assert len({r[path] for r in results}) == 1


def test_unknown_family_is_not_called(fresh_versions):
    counting = Counting()
    assert library_versions([("mbedTLS", lib("libc.so.6"))], counting) == {lib("libc.so.6"): None}
    assert counting.calls == []


# --- CachedRun --------------------------------------------------------------------------


def test_cached_run_runs_each_argv_once_across_threads():
    calls = []

    def slow(argv: Sequence[str]) -> RunOutput:
        calls.append(tuple(argv))
        time.sleep(0.2)
        return RunOutput(list(argv), 0, "out", "", 0.2)

    cached = CachedRun(slow)
    threads = [threading.Thread(target=cached, args=(["tool", "-V"],)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cached(["tool", "--other"])
    assert calls == [("tool", "-V"), ("tool", "--other")]
