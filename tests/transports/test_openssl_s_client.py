"""openssl's own facts: what ``openssl version`` says, and what that means for TLS."""

from __future__ import annotations

import pytest
from detecting import detect_stand_in

from transports.openssl_s_client import parse_openssl_version
from transports.tlsinfo import verdict
from transports.versions import parse_openssl_banner


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


@pytest.mark.parametrize(
    ("text", "tool", "library", "version", "expected"),
    [
        ("OpenSSL 0.9.8zh 3 Dec 2015", "0.9.8zh", "OpenSSL", "0.9.8zh", ("no", "no")),
        ("OpenSSL 1.0.0t  3 Dec 2015", "1.0.0t", "OpenSSL", "1.0.0t", ("partly", "no")),
        (
            "OpenSSL 1.0.2k-fips  26 Jan 2017",
            "1.0.2k-fips",
            "OpenSSL",
            "1.0.2k-fips",
            ("yes", "no"),
        ),
        ("OpenSSL 1.1.1w  11 Sep 2023", "1.1.1w", "OpenSSL", "1.1.1w", ("yes", "yes")),
        ("OpenSSL 3.0.19 27 Jan 2026", "3.0.19", "OpenSSL", "3.0.19", ("yes", "yes")),
        ("LibreSSL 3.3.6", "3.3.6", "LibreSSL", "3.3.6", ("unknown", "unknown")),
        # OpenSSL 3 names the library it really loaded; that one counts.
        (
            "OpenSSL 3.0.2 15 Mar 2022 (Library: OpenSSL 1.1.1f  31 Mar 2020)",
            "3.0.2",
            "OpenSSL",
            "1.1.1f",
            ("yes", "yes"),
        ),
    ],
)
def test_openssl_version_lines(text, tool, library, version, expected):
    info = parse_openssl_version(text)
    assert info == (tool, library, version)
    assert verdict(info.library, info.library_version) == expected


def test_openssl_version_garbage():
    assert parse_openssl_version("openssl: command not found") == (None, None, None)
    assert parse_openssl_banner("") is None
