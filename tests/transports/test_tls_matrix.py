"""The TLS matrix, from made-up probes against made-up server checks: what the grid tells
an administrator about each mail command and the account's server."""

from __future__ import annotations

from transports.findings import Level
from transports.tls_matrix import CommandTls, cell, matrix

ONLY_13 = {"1.0": False, "1.1": False, "1.2": False, "1.3": True}
UP_TO_12 = {"1.0": False, "1.1": False, "1.2": True, "1.3": False}
MODERN = {"1.0": False, "1.1": False, "1.2": True, "1.3": True}
LEGACY_ONLY = {"1.0": True, "1.1": True, "1.2": False, "1.3": False}


def command(key="curl", library="OpenSSL", version="3.0.19", tls12="yes", tls13="yes", **kw):
    return CommandTls(key, key, True, library, version, tls12, tls13, **kw)


OPENSSL_101 = command("python", "OpenSSL", "1.0.1", "yes", "no")
GNUTLS_34 = command("msmtp", "GnuTLS", "3.4.17", "yes", "no")
OPENSSL_3 = command("curl")


def test_old_libraries_against_a_server_capped_at_tls_13_have_no_version_in_common():
    cells = {c.key: c for c in matrix([OPENSSL_101, GNUTLS_34, OPENSSL_3], ONLY_13)}
    for key, library in (("python", "OpenSSL 1.0.1"), ("msmtp", "GnuTLS 3.4.17")):
        found = cells[key]
        assert found.level is Level.FAIL and found.common == ()
        assert str(found.text).startswith("no version in common: library " + library)
        assert "only TLS 1.3" in str(found.text)
    assert cells["curl"].level is Level.PASS
    assert str(cells["curl"].text) == "works with TLS 1.3"
    assert cells["curl"].best == "1.3"


def test_a_library_without_tls_13_against_a_modern_server_gets_only_tls_12_and_why():
    found = cell(GNUTLS_34, MODERN)
    assert found.level is Level.WARN and found.best == "1.2"
    assert str(found.text) == "only TLS 1.2: GnuTLS 3.4.17 knows no TLS 1.3"


def test_a_server_capped_at_tls_12_gives_a_modern_command_only_tls_12():
    found = cell(OPENSSL_3, UP_TO_12)
    assert found.level is Level.WARN and str(found.text) == "only TLS 1.2"


def test_a_server_with_only_legacy_versions_is_red_even_when_they_are_shared():
    found = cell(OPENSSL_3, LEGACY_ONLY)
    assert found.level is Level.FAIL and found.common == ("1.0", "1.1")
    assert "outdated TLS 1.1" in str(found.text)


def test_the_last_tests_negotiated_version_is_named_in_the_cell():
    found = cell(command(last_tls="TLSv1.3", last_ok=True), MODERN)
    assert str(found.text) == "works with TLS 1.3; the last test used TLSv1.3"
    failed = cell(command(last_tls="TLSv1.3", last_ok=False), MODERN)
    assert "last test" not in str(failed.text)


def test_without_a_server_check_the_cell_says_what_the_command_can_speak():
    found = cell(OPENSSL_101, None)
    assert found.level is None and found.server is None
    assert str(found.text) == "can speak TLS 1.2; the server is not checked yet"
    ancient = cell(command("mailx", "OpenSSL", "0.9.8zh", "no", "no"), None)
    assert ancient.level is Level.FAIL and "neither TLS 1.2 nor 1.3" in str(ancient.text)


def test_not_installed_and_unknown_libraries_are_neutral_not_red():
    absent = cell(CommandTls("mutt", "mutt", False), MODERN)
    assert absent.level is None and str(absent.text) == "not installed"
    unknown = cell(command("s-nail", "LibreSSL", "3.3.6", "unknown", "unknown"), MODERN)
    assert unknown.level is None and "LibreSSL 3.3.6" in str(unknown.text)


def test_a_server_that_accepted_nothing_is_said_so():
    found = cell(OPENSSL_3, dict.fromkeys(ONLY_13, False))
    assert found.level is Level.FAIL and "accepted no TLS version" in str(found.text)


def test_a_cell_is_json_ready_with_its_sentence_as_data():
    data = cell(GNUTLS_34, ONLY_13).to_dict()
    assert data["client"] == {"1.0": True, "1.1": True, "1.2": True, "1.3": False}
    assert data["server"] == ONLY_13 and data["common"] == [] and data["level"] == "fail"
    assert data["text_data"]["params"]["library"] == "GnuTLS 3.4.17"
