"""curl's own facts: the config lines (-K) that carry the password on stdin."""

from __future__ import annotations

import pytest
from detecting import detect_stand_in, need

from transports.base import TargetError
from transports.curl import config_line, parse_curl_version
from transports.run import run
from transports.tlsinfo import verdict


def test_quotes_and_backslashes_are_escaped():
    assert config_line("user", 'u:p"a\\ss') == 'user = "u:p\\"a\\\\ss"\n'


@pytest.mark.parametrize("value", ['u:pw"\nupload-file = "/etc/shadow', "u:p\rw"])
def test_a_line_break_cannot_start_an_option_of_its_own(value):
    with pytest.raises(TargetError):
        config_line("user", value)


# --- what curl says of its TLS library, and what the probe makes of it -------------------


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


CURL_LINES = {
    "OpenSSL/0.9.8zh": ("OpenSSL", "0.9.8zh", ("no", "no")),
    "OpenSSL/1.0.0t": ("OpenSSL", "1.0.0t", ("partly", "no")),
    "OpenSSL/1.0.2k-fips": ("OpenSSL", "1.0.2k-fips", ("yes", "no")),
    "OpenSSL/1.1.1w": ("OpenSSL", "1.1.1w", ("yes", "yes")),
    "GnuTLS/2.12.23": ("GnuTLS", "2.12.23", ("no", "no")),
    "GnuTLS/3.4.10": ("GnuTLS", "3.4.10", ("yes", "no")),
    "GnuTLS/3.7.9": ("GnuTLS", "3.7.9", ("yes", "yes")),
    "NSS/3.44": ("NSS", "3.44", ("unknown", "unknown")),
    "wolfSSL/5.5.4": ("wolfSSL", "5.5.4", ("unknown", "unknown")),
    "mbedTLS/2.28.3": ("mbedTLS", "2.28.3", ("unknown", "unknown")),
    "LibreSSL/3.3.6": ("LibreSSL", "3.3.6", ("unknown", "unknown")),
}


@pytest.mark.parametrize("token", sorted(CURL_LINES))
def test_curl_version_lines(token):
    text = (
        f"curl 7.61.1 (x86_64-redhat-linux-gnu) libcurl/7.61.1 {token} zlib/1.2.11 "
        "brotli/1.0.6 libidn2/2.2.0 libpsl/0.20.2 (+libidn2/2.2.0) nghttp2/1.33.0\n"
        "Release-Date: 2018-09-05\nProtocols: dict file ftp smtp smtps\n"
    )
    library, version, expected = CURL_LINES[token]
    info = parse_curl_version(text)
    assert info == (("7.61.1", library, version))
    assert verdict(info.library, info.library_version) == expected


def test_curl_multissl_skips_inactive_backends():
    info = parse_curl_version(
        "curl 7.68.0 (x86_64-pc-linux-gnu) libcurl/7.68.0 (GnuTLS/3.6.13) OpenSSL/1.1.1f zlib"
    )
    assert info.library == "OpenSSL"
    assert info.library_version == "1.1.1f"


def test_curl_real_output():
    out = run([need("curl"), "-V"], timeout=5)
    info = parse_curl_version(out.stdout)
    assert info.version and info.library == "OpenSSL"
    assert verdict(info.library, info.library_version) == ("yes", "yes")
