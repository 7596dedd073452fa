"""transports.detection on this machine's real mail commands and on stand-in scripts."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from transports import KEYS
from transports.base import Detection
from transports.detection import detect, probe_all
from transports.run import RunOutput, run
from transports.tlsinfo import CachedRun, plain_run


def need(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def stand_in(tmp_path: Path, name: str, output: str, exit_code: int = 0) -> str:
    """A shell script that prints ``output`` whatever it is asked: a tool we do not have."""
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {exit_code}\n")
    script.chmod(0o755)
    return str(script)


def detect_stand_in(
    tmp_path: Path, key: str, output: str, name: str | None = None, exit_code: int = 0
) -> Detection:
    """``detect(key)`` on a stand-in (named ``name``, else ``key``) that prints ``output``."""
    return detect(key, stand_in(tmp_path, name or key, output, exit_code))


@pytest.fixture(scope="module")
def probe() -> dict[str, object]:
    start = time.monotonic()
    rows = probe_all()
    return {"rows": rows, "wall": time.monotonic() - start, **{d.key: d for d in rows}}


# --- probe_all on this machine ----------------------------------------------------------


def test_probe_all_covers_the_catalogue_in_order(probe):
    assert [d.key for d in probe["rows"]] == list(KEYS)
    for row in probe["rows"]:
        assert row.tls12 in ("yes", "partly", "no", "unknown")
        assert row.tls13 in ("yes", "partly", "no", "unknown")
        assert row.duration_s >= 0
        assert row.found or row.note, row.key


def test_probe_all_runs_in_parallel(probe):
    slowest = max(d.duration_s for d in probe["rows"])
    total = sum(d.duration_s for d in probe["rows"])
    assert probe["wall"] < slowest + 1.0
    assert probe["wall"] < total


def test_curl_is_openssl_via_libcurl(probe):
    need("curl")
    curl = probe["curl"]
    assert curl.found and curl.version
    assert curl.tls_library == "OpenSSL"
    assert (curl.tls12, curl.tls13) == ("yes", "yes")
    assert curl.evidence[0] == "readelf -d curl: libcurl.so.4 (no TLS library of its own)"
    assert any(e.startswith("curl -V: OpenSSL/") for e in curl.evidence)
    assert "libssl" in curl.ldd_ssl
    # What ldd also sees, and the verdict ignores: GnuTLS through libldap/librtmp.
    assert "libgnutls" in run(["ldd", curl.path], timeout=5).stdout


@pytest.mark.parametrize("key", ["msmtp", "mutt", "mailx-mailutils"])
def test_gnutls_commands(probe, key):
    row = probe[key]
    if not row.found:
        pytest.skip(row.note)
    assert row.tls_library == "GnuTLS"
    assert row.tls_library_version and row.tls_library_version.startswith("3.")
    assert (row.tls12, row.tls13) == ("yes", "yes")
    assert row.version


def test_mailutils_vendor_line_disagrees(probe):
    row = probe["mailx-mailutils"]
    if not row.found:
        pytest.skip(row.note)
    assert row.path.endswith("mail.mailutils")
    assert "libssl" in row.ldd_ssl  # the vendor's check would say OpenSSL
    assert row.tls_library == "GnuTLS"
    assert any("WITH_GNUTLS" in e for e in row.evidence)


@pytest.mark.parametrize("key", ["openssl", "snail14"])
def test_openssl_commands(probe, key):
    row = probe[key]
    if not row.found:
        pytest.skip(row.note)
    assert row.tls_library == "OpenSSL"
    assert row.tls_library_version.startswith("3.")
    assert (row.tls12, row.tls13) == ("yes", "yes")


def test_snail_rows(probe):
    need("s-nail")
    snail14, snail15 = probe["snail14"], probe["snail15"]
    assert snail14.found and snail14.version.startswith("14.")
    assert snail14.path.endswith("/s-nail")
    assert not snail15.found
    assert snail15.note == f"installed s-nail is {snail14.version}"


def test_postfix_via_libpostfix_tls(probe):
    need("postconf")
    row = probe["postfix"]
    assert row.found and row.path.endswith("sendmail")
    assert row.version and row.version[0].isdigit()
    assert row.tls_library == "OpenSSL"
    assert row.evidence[:2] == [
        "readelf -d smtp: libpostfix-tls.so (no TLS library of its own)",
        "readelf -d libpostfix-tls.so: libssl.so.3",
    ]
    assert "postfix" in row.note  # configured / running or not: informational


def test_python_rows(probe):
    python3 = probe["python3"]
    assert python3.found and python3.version.startswith("3.")
    assert python3.tls_library == "OpenSSL"
    assert any(e.startswith("_ssl module: OpenSSL") for e in python3.evidence)
    python = probe["python"]
    if not python.found:
        assert "python" in python.note
        return
    same = os.path.realpath(python.path) == os.path.realpath(python3.path)
    assert ("same interpreter as python3 (python-is-python3)" in python.note) is same


def test_perl_row(probe):
    row = probe["perl"]
    need("perl")
    assert row.found and row.version.startswith("5.")
    assert row.tls_library == "OpenSSL"
    assert any(e.startswith("readelf -d SSLeay.so: libssl") for e in row.evidence)
    assert any(e.startswith("Net::SSLeay ") for e in row.evidence)
    assert row.usable, row.note


def test_bsd_mailx_has_no_tls(probe):
    need("bsd-mailx")
    row = probe["mailx-bsd"]
    assert row.found and row.path.endswith("bsd-mailx")
    assert (row.tls_library, row.tls12, row.tls13) == ("none", "no", "no")
    assert "sendmail" in row.note
    assert row.version  # from its package: bsd-mailx prints no version


def test_missing_tools_are_not_found(probe):
    for key, names in (("exim", ("exim4", "exim")), ("mailx-heirloom", ("heirloom-mailx",))):
        if any(shutil.which(n) or os.path.exists(f"/usr/sbin/{n}") for n in names):
            continue
        assert not probe[key].found
        assert probe[key].note


# --- executable overrides ---------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_nonexistent_executable_is_not_found(key, tmp_path):
    row = detect(key, str(tmp_path / "no-such-tool"))
    assert row.found is False
    assert row.note


def test_python2_interpreter():
    python2 = "/root/.pyenv/versions/2.7.18/bin/python"
    if not os.path.exists(python2):
        python2 = need("python2")
    row = detect("python", python2)
    assert row.found and row.version.startswith("2.7")
    assert "python-is-python3" not in row.note
    assert row.tls_library in ("OpenSSL", "LibreSSL", "none")


def test_unknown_key():
    with pytest.raises(ValueError):
        detect("sendmail-classic")


# --- stand-ins for tools and libraries this machine lacks -------------------------------

OLD_CURLS = [
    ("OpenSSL/0.9.8zh", "0.9.8zh", ("no", "no")),
    ("OpenSSL/1.0.0t", "1.0.0t", ("partly", "no")),
    ("OpenSSL/1.0.2k-fips", "1.0.2k-fips", ("yes", "no")),
    ("OpenSSL/1.1.1w", "1.1.1w", ("yes", "yes")),
    ("GnuTLS/2.12.23", "2.12.23", ("no", "no")),
    ("GnuTLS/3.4.10", "3.4.10", ("yes", "no")),
    ("GnuTLS/3.7.9", "3.7.9", ("yes", "yes")),
]


@pytest.mark.parametrize(("token", "version", "expected"), OLD_CURLS)
def test_old_curl_stand_in(tmp_path, token, version, expected):
    row = detect_stand_in(
        tmp_path,
        "curl",
        f"curl 7.19.7 (x86_64-redhat-linux-gnu) libcurl/7.19.7 {token} zlib/1.2.3\n"
        "Protocols: tftp ftp telnet dict ldap ldaps http file https ftps scp sftp",
    )
    assert row.found and row.version == "7.19.7"
    assert row.tls_library == token.split("/")[0]
    assert row.tls_library_version == version
    assert (row.tls12, row.tls13) == expected
    assert "script" in row.note  # the link could not be read; the tool's own word counts


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("OpenSSL 0.9.8e-fips-rhel5 01 Jul 2008", ("no", "no")),
        ("OpenSSL 1.0.0-fips 29 Mar 2010", ("partly", "no")),
        ("OpenSSL 1.0.2k-fips  26 Jan 2017", ("yes", "no")),
        ("OpenSSL 1.1.1k  FIPS 25 Mar 2021", ("yes", "yes")),
        ("LibreSSL 3.3.6", ("unknown", "unknown")),
    ],
)
def test_old_openssl_stand_in(tmp_path, output, expected):
    row = detect_stand_in(tmp_path, "openssl", output)
    assert (row.tls12, row.tls13) == expected


def test_old_exim_stand_in(tmp_path):
    row = detect_stand_in(
        tmp_path,
        "exim",
        "Exim version 4.84_2 #2 built 02-Feb-2016 14:52:13\n"
        "Support for: crypteq iconv() IPv6 GnuTLS move_frozen_messages DKIM PRDR OCSP\n"
        "Library version: GnuTLS: Compile: 3.3.8\n"
        "                         Runtime: 3.3.8",
        name="exim4",
    )
    assert (row.found, row.version, row.tls_library, row.tls_library_version) == (
        True,
        "4.84_2",
        "GnuTLS",
        "3.3.8",
    )
    assert (row.tls12, row.tls13) == ("yes", "no")


def test_exim_that_cannot_start(tmp_path):
    output = 'exim: failed to find uid for user name "Debian-exim"'
    row = detect_stand_in(tmp_path, "exim", output, name="exim4", exit_code=1)
    assert row.found and not row.usable
    assert "Debian-exim" in row.note


def test_heirloom_stand_in(tmp_path):
    row = detect_stand_in(tmp_path, "mailx-heirloom", "12.5 7/5/10", name="mailx")
    assert row.found and row.version == "12.5"
    assert row.tls_library == "unknown"
    assert "script" in row.note


def test_static_binary_as_a_tool():
    ldconfig = "/sbin/ldconfig"
    if not os.path.exists(ldconfig) or "statically" not in run(["ldd", ldconfig], timeout=5).text:
        pytest.skip("no statically linked /sbin/ldconfig here")
    row = detect("msmtp", ldconfig)  # `ldconfig --version` names no TLS library
    assert row.found and row.version is None
    assert row.tls_library == "unknown"
    assert "statically linked" in row.note


def test_heirloom_key_rejects_another_mailx():
    row = detect("mailx-heirloom", need("bsd-mailx"))
    assert not row.found
    assert "BSD mailx" in row.note


def test_snail15_stand_in(tmp_path):
    fake = stand_in(tmp_path, "s-nail", "s-nail v15.0.0, 2026-01-01 (built for Linux)\n +tls")
    assert detect("snail15", fake).found
    row14 = detect("snail14", fake)
    assert not row14.found
    assert row14.note == "installed s-nail is 15.0.0"


def test_neomutt_with_old_gnutls_stand_in(tmp_path):
    row = detect_stand_in(tmp_path, "mutt", "NeoMutt 20170113 (1.7.2)\nGnuTLS: 2.12.23\n  +gnutls")
    assert (row.tls_library, row.tls_library_version, row.tls12, row.tls13) == (
        "GnuTLS",
        "2.12.23",
        "no",
        "no",
    )


def test_python_without_ssl_stand_in(tmp_path):
    row = detect_stand_in(
        tmp_path,
        "python3",
        '{"executable": "/opt/py/bin/python3", "version": "3.9.2", '
        '"ssl_error": "ImportError: No module named _ssl"}',
    )
    assert row.found and row.version == "3.9.2"
    assert not row.usable
    assert (row.tls_library, row.tls12, row.tls13) == ("none", "no", "no")
    assert "no ssl module" in row.note


def test_perl_missing_modules_stand_in(tmp_path):
    row = detect_stand_in(
        tmp_path,
        "perl",
        "perl=5.16.3\nNet::SSLeay=1.55\nIO::Socket::SSL=-\nNet::SMTP=2.31\nAuthen::SASL=-\n"
        "ssleay=OpenSSL 1.0.2k-fips  26 Jan 2017",
    )
    assert row.found and row.version == "5.16.3"
    assert not row.usable
    for text in ("libio-socket-ssl-perl", "libauthen-sasl-perl", "Net::SMTP >= 3.0"):
        assert text in row.note
    assert (row.tls_library, row.tls_library_version) == ("OpenSSL", "1.0.2k-fips")
    assert (row.tls12, row.tls13) == ("yes", "no")


def test_failing_and_hanging_tools(tmp_path):
    row = detect_stand_in(tmp_path, "msmtp", "msmtp: cannot load libgnutls", exit_code=127)
    assert row.found and row.version is None
    assert "failed (exit 127): msmtp: cannot load libgnutls" in row.note

    hanging = tmp_path / "mutt"
    hanging.write_text("#!/bin/sh\nsleep 30\n")
    hanging.chmod(0o755)
    quick = CachedRun(lambda argv: run(argv, timeout=0.5, env={"LC_ALL": "C"}))
    start = time.monotonic()
    row = detect("mutt", str(hanging), run_fn=quick)
    assert time.monotonic() - start < 5
    assert row.found and "did not answer within" in row.note


# --- sharing subprocess calls -----------------------------------------------------------


def test_shared_calls_run_once():
    need("s-nail")
    calls: list[tuple[str, ...]] = []
    lock = threading.Lock()

    def counting(argv: Sequence[str]) -> RunOutput:
        with lock:
            calls.append(tuple(argv))
        return plain_run(argv)

    shared = CachedRun(counting)
    threads = [
        threading.Thread(target=detect, args=(key,), kwargs={"run_fn": shared})
        for key in ("snail14", "snail15", "python", "python3")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == len(set(calls))
    assert sum(1 for argv in calls if argv[0].endswith("s-nail") and "-Xversion" in argv) == 1
