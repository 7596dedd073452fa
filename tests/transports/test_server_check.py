"""The server check (transports/server_check.py) against real servers on loopback: the
suite's SMTP test server, the diagnosis servers (tests/support/diagnosis_servers.py), a
silent one and a closed port. No mail is sent in any of them."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from diagnosis_servers import DiagnosisServers
from pki import Pki
from smtp_server import SilentServer, SmtpTestServer

from transports.base import Mode, TargetError
from transports.findings import Level
from transports.mode_probe import GREETING_WAIT
from transports.server_check import (
    CHECKS,
    ServerReport,
    check_server,
    hostname_matches,
)

ALL_FALSE = dict.fromkeys(("1.0", "1.1", "1.2", "1.3"), False)
UNKNOWN = dict.fromkeys(("1.0", "1.1", "1.2", "1.3"))
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def servers(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiagnosisServers]:
    with DiagnosisServers(pki, tmp_path_factory.mktemp("diagnosis-servers")) as running:
        yield running


def check(port: int, mode: str | None, server: SmtpTestServer, **kwargs) -> ServerReport:
    kwargs.setdefault("ca_file", str(server.pki.ca_file))
    kwargs.setdefault("timeout", TIMEOUT)
    return check_server("localhost", port, mode=mode, **kwargs)


def levels(report: ServerReport, name: str) -> list[Level]:
    return [f.level for f in report.findings if f.check == name]


def texts(report: ServerReport, name: str) -> str:
    return " | ".join(str(f.text) for f in report.findings if f.check == name)


def no_problem(report: ServerReport) -> bool:
    return all(f.level is Level.PASS for f in report.findings)


def problems(report: ServerReport) -> list[str]:
    return [f"{f.level.value} {f.check}: {f.text}" for f in report.findings if f.level != "pass"]


# --- servers as they should be ------------------------------------------------------------


def test_a_good_starttls_server_is_reported_in_full(smtp):
    report = check(smtp.starttls_port, "starttls", smtp)
    assert no_problem(report), problems(report)
    assert (report.mode, report.mode_source, report.starttls) == (Mode.STARTTLS, "given", True)
    assert report.banner.startswith("220 ") and report.connect_ms is not None
    before, after = report.capabilities_before_tls, report.capabilities_after_tls
    assert "STARTTLS" in before and "STARTTLS" not in after
    # aiosmtpd, like postfix, offers the login only once TLS is up.
    assert report.auth_mechanisms_before_tls == ()
    assert set(report.auth_mechanisms_after_tls) == {"PLAIN", "LOGIN"}
    assert report.size == smtp.data_size_limit
    assert report.flags == {"8BITMIME": True, "SMTPUTF8": True, "PIPELINING": False}
    assert report.tls_version == "TLSv1.3"
    assert report.tls_versions == {**ALL_FALSE, "1.2": True, "1.3": True}
    cert = report.certificate
    assert cert.subject == "localhost" and {"localhost", "127.0.0.1", "::1"} <= set(cert.san)
    assert "xmailadmin test CA" in cert.issuer
    assert cert.chain[0] == {"subject": "CN=localhost,O=xmailadmin tests", "issuer": cert.issuer}
    assert cert.hostname_match is True and 363 <= cert.days_left <= 365
    assert (cert.trusted, cert.trusted_by, cert.verify_error) == (True, "ca_file", None)
    assert "CA file" in texts(report, "certificate")
    assert {f.check for f in report.findings} == set(CHECKS) - {"login"}
    assert report.login is None and report.level is Level.PASS


def test_an_smtps_server_speaks_tls_from_the_first_byte(smtp):
    report = check(smtp.smtps_port, "smtps", smtp)
    assert no_problem(report), problems(report)
    assert report.mode is Mode.SMTPS and report.starttls is None
    assert report.capabilities_before_tls is None and report.auth_mechanisms_before_tls is None
    assert "PLAIN" in report.auth_mechanisms_after_tls
    assert report.tls_versions == {**ALL_FALSE, "1.2": True, "1.3": True}
    assert report.certificate.trusted_by == "ca_file"


def test_an_address_as_host_is_matched_against_the_ip_entries(smtp):
    report = check_server("127.0.0.1", smtp.smtps_port, mode="smtps", ca_file=str(smtp.ca_file))
    assert report.certificate.hostname_match is True
    assert report.host == "127.0.0.1" and no_problem(report), problems(report)


# --- TLS versions ---------------------------------------------------------------------------


@pytest.mark.parametrize("listener", ["capped_12", "tls12"])
def test_a_server_capped_at_tls_1_2_passes_with_a_note(servers, smtp, listener):
    if listener == "tls12":  # the suite's own, in SMTPS
        report = check(smtp.tls12_port, "smtps", smtp)
    else:
        report = check(servers.port(listener), "starttls", servers)
    assert report.tls_versions == {**ALL_FALSE, "1.2": True}
    assert report.tls_version == "TLSv1.2"
    assert levels(report, "tls-versions") == [Level.PASS]
    assert "not TLS 1.3" in texts(report, "tls-versions")
    assert no_problem(report), problems(report)


def test_a_server_with_tls_1_3_only_passes(servers):
    report = check(servers.port("only_13"), "starttls", servers)
    assert report.tls_versions == {**ALL_FALSE, "1.3": True}
    assert no_problem(report), problems(report)


def test_a_server_that_still_accepts_tls_1_0_and_1_1_is_warned_about(servers):
    report = check(servers.port("legacy"), "starttls", servers)
    assert report.tls_versions == dict.fromkeys(ALL_FALSE, True)
    assert levels(report, "tls-versions") == [Level.WARN]
    assert "TLS 1.0 and TLS 1.1" in texts(report, "tls-versions")
    assert report.level is Level.WARN


# --- AUTH and the login -----------------------------------------------------------------------


def test_auth_offered_before_starttls_is_a_warning(servers):
    report = check(servers.port("auth_before_tls"), "starttls", servers)
    assert "PLAIN" in report.auth_mechanisms_before_tls
    assert levels(report, "auth") == [Level.WARN, Level.PASS]
    assert "before STARTTLS" in texts(report, "auth") and report.level is Level.WARN


def secret_spellings(user: str, password: str) -> list[str]:
    return [
        password,
        quote(password, safe=""),
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
    ]


def test_a_working_login_is_reported_and_the_password_never(smtp):
    report = check(smtp.starttls_port, "starttls", smtp, user=smtp.user, password=smtp.password)
    assert report.login == {
        "tried": True, "ok": True, "code": 235, "mechanism": "PLAIN",
        "reply": "235 2.7.0 Authentication successful",
    }  # fmt: skip
    assert levels(report, "login") == [Level.PASS]
    assert smtp.messages() == []  # no MAIL FROM, nothing sent
    dumped = json.dumps(report.to_dict()) + repr(report)
    for spelling in secret_spellings(smtp.user, smtp.password):
        assert spelling not in dumped


def test_a_refused_login_fails_with_the_servers_words_and_no_secret(smtp):
    wrong = "Wr0ng-pass-Secret"
    report = check(smtp.smtps_port, "smtps", smtp, user=smtp.user, password=wrong)
    assert report.login["tried"] and not report.login["ok"] and report.login["code"] == 535
    assert levels(report, "login") == [Level.FAIL]
    assert "Authentication credentials invalid" in texts(report, "login")
    dumped = json.dumps(report.to_dict()) + repr(report)
    for spelling in secret_spellings(smtp.user, wrong):
        assert spelling not in dumped


def test_the_login_uses_auth_login_where_plain_is_not_offered(servers):
    report = check(servers.port("login_only"), "starttls", servers,
                   user=servers.user, password=servers.password)  # fmt: skip
    assert report.auth_mechanisms_after_tls == ("LOGIN",)
    assert report.login["mechanism"] == "LOGIN" and report.login["ok"] is True


# --- the certificate ------------------------------------------------------------------------


def test_a_certificate_that_expires_tomorrow_is_a_warning(servers):
    report = check(servers.port("expiring"), "starttls", servers)
    assert report.certificate.days_left in (0, 1)
    assert report.certificate.trusted is True  # still valid: only the date is the problem
    assert levels(report, "certificate").count(Level.WARN) == 1
    assert "renewed" in texts(report, "certificate") and report.level is Level.WARN


def test_an_expired_certificate_fails_as_expired_not_as_untrusted(servers):
    report = check(servers.port("expired"), "starttls", servers)
    cert = report.certificate
    assert cert.days_left < 0 and cert.trusted is False and "expired" in cert.verify_error
    assert levels(report, "certificate") == [Level.FAIL]
    assert "expired on" in texts(report, "certificate")
    assert "CA file" not in texts(report, "certificate")  # no help in an expired certificate


def test_a_certificate_for_another_name_fails_naming_its_names(smtp):
    report = check(smtp.wrong_host_port, "smtps", smtp)
    cert = report.certificate
    assert cert.hostname_match is False and cert.san == ("wrong.example",)
    assert cert.trusted_by == "ca_file"  # the chain is fine: only the name is wrong
    (failed,) = [f for f in report.findings if f.level is Level.FAIL]
    assert failed.check == "certificate"
    assert "wrong.example" in str(failed.text) and "localhost" in str(failed.text)


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_a_certificate_of_an_unknown_ca_is_untrusted_naming_the_issuer(smtp, mode):
    port = smtp.other_ca_starttls_port if mode == "starttls" else smtp.other_ca_smtps_port
    report = check(port, mode, smtp)
    cert = report.certificate
    assert (cert.trusted, cert.trusted_by) == (False, None)
    assert cert.verify_error == "unable to get local issuer certificate"
    words = texts(report, "certificate")
    assert "xmailadmin other (untrusted) CA" in words
    assert "set the account's CA file to the issuer's certificate" in words
    assert report.level is Level.FAIL


def test_without_a_ca_file_the_test_ca_is_not_trusted_by_the_system(smtp):
    report = check(smtp.starttls_port, "starttls", smtp, ca_file=None)
    assert report.certificate.trusted is False and report.certificate.trusted_by is None
    assert levels(report, "certificate") == [Level.FAIL, Level.PASS]


def test_an_unusable_ca_file_is_a_finding_and_the_rest_is_checked(smtp, tmp_path):
    not_a_ca = tmp_path / "notes.txt"
    not_a_ca.write_text("no certificate here\n")
    report = check(smtp.starttls_port, "starttls", smtp, ca_file=str(not_a_ca))
    assert "holds no usable certificate" in texts(report, "certificate")
    assert report.tls_versions["1.3"] is True and report.certificate.trusted is False


@pytest.mark.parametrize(
    ("host", "dns", "ips", "cn", "matches"),
    [
        ("mail.example.org", ["*.example.org"], [], None, True),
        ("MAIL.Example.org.", ["mail.example.org"], [], None, True),
        ("example.org", ["*.example.org"], [], None, False),  # one label, not none
        ("a.b.example.org", ["*.example.org"], [], None, False),  # nor two
        ("mail.org", ["*.org"], [], None, False),  # no wildcard for a whole TLD
        ("mail.example.org", ["m*.example.org"], [], None, False),  # no partial wildcard
        ("mail.example.org", [], [], "mail.example.org", True),  # CN only without DNS names
        ("mail.example.org", ["other.example.org"], [], "mail.example.org", False),
        ("192.0.2.1", ["192.0.2.1"], [], None, False),  # an address needs an IP entry
        ("192.0.2.1", [], ["192.0.2.1"], None, True),
        ("2001:db8::1", [], ["2001:db8:0::1"], None, True),
    ],
)
def test_host_names_are_matched_as_tls_clients_match_them(host, dns, ips, cn, matches):
    assert hostname_matches(host, dns, ips, cn) is matches


# --- the wrong mode ------------------------------------------------------------------------


def test_a_starttls_port_checked_as_smtps_says_to_use_starttls(smtp):
    report = check(smtp.starttls_port, "smtps", smtp)
    assert "set the mode to starttls" in texts(report, "banner")
    assert report.level is Level.FAIL and report.mode_source == "given"
    assert report.tls_versions == UNKNOWN and report.certificate is None
    assert report.duration_s < 2.0


def test_an_smtps_port_checked_as_starttls_says_to_use_smtps_and_ends_the_other_waits(smtp):
    report = check(smtp.smtps_port, "starttls", smtp, timeout=10.0)
    assert "implicit-TLS port, set the mode to smtps" in texts(report, "banner")
    assert report.tls_versions == UNKNOWN and report.certificate is None
    # The version tries wait for a greeting too; the main connection ends them.
    assert report.duration_s < GREETING_WAIT + 1.5


@pytest.mark.parametrize(
    ("listener", "shown"), [("smtps", Mode.SMTPS), ("starttls", Mode.STARTTLS)]
)
def test_without_a_mode_the_server_shows_it(smtp, listener, shown):
    # Neither port is 465, so the guess is STARTTLS: right for one, wrong for the other.
    report = check(smtp.ports[listener], None, smtp)
    assert (report.mode, report.mode_source) == (shown, "detected")
    assert no_problem(report), problems(report)


# --- network problems: findings, never exceptions ------------------------------------------


def test_a_closed_port_fails_at_connect_with_a_hint_and_the_report_stays_complete(refused_port):
    report = check_server("127.0.0.1", refused_port, mode="starttls", timeout=TIMEOUT)
    (finding,) = report.findings
    assert (finding.check, finding.level) == ("connect", Level.FAIL)
    assert "refused" in str(finding.text) and "587" in str(finding.text)
    assert "465" in str(finding.text)
    data = report.to_dict()
    assert data["connect_ms"] is None and data["banner"] is None and data["certificate"] is None
    assert data["tls_versions"] == UNKNOWN and data["login"] is None
    assert data["capabilities"] == {"before_tls": None, "after_tls": None}
    json.dumps(data)


def test_a_closed_port_without_a_mode_falls_back_to_the_ports_rule(refused_port):
    report = check_server("127.0.0.1", refused_port, timeout=TIMEOUT)
    assert (report.mode, report.mode_source) == (Mode.STARTTLS, "port")


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_a_silent_server_ends_within_the_timeout(mode):
    timeout = 3.0
    with SilentServer() as silent:
        start = time.monotonic()
        report = check_server("127.0.0.1", silent.port, mode=mode, timeout=timeout)
        took = time.monotonic() - start
        assert silent.accepted >= 1
    assert took < timeout + 1.0
    assert report.level is Level.FAIL and report.banner is None
    assert f"within {timeout:g} s" in " ".join(str(f.text) for f in report.findings)
    assert report.tls_versions == UNKNOWN


# --- bad values: a clear error before any connection ----------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "kwargs", "words"),
    [
        ("mail.example.org;reboot", 587, {}, "not a valid host name"),
        ("$(reboot)", 587, {}, "not a valid host name"),
        ("localhost", 0, {}, "port out of range 1-65535"),
        ("localhost", 70000, {}, "port out of range 1-65535"),
        ("localhost", 587, {"mode": "tls"}, "tls"),
        ("localhost", 587, {"timeout": 0}, "timeout"),
        ("localhost", 587, {"user": "me@example.org"}, "both the user and the password"),
        ("localhost", 587, {"user": "me@example.org", "password": "a\nb"}, "line break"),
    ],
)
def test_bad_values_raise_a_clear_error_before_connecting(host, port, kwargs, words):
    with SilentServer() as silent:
        with pytest.raises(ValueError, match=words) as raised:
            check_server(host, silent.port if port == 587 else port, **kwargs)
        assert silent.accepted == 0
    if "mode" not in kwargs:
        assert isinstance(raised.value, TargetError)


# --- the stored form ---------------------------------------------------------------------


def test_the_report_goes_through_json_and_back_unchanged(smtp):
    report = check(smtp.starttls_port, "starttls", smtp, user=smtp.user, password="wrong-pw")
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {
        "host", "port", "mode", "mode_source", "connect_ms", "banner", "starttls",
        "capabilities", "auth_mechanisms_before_tls", "auth_mechanisms_after_tls", "size",
        "flags", "tls_version", "tls_versions", "certificate", "login", "findings", "duration_s",
    }  # fmt: skip
    assert set(data["certificate"]) == {
        "subject", "san", "issuer", "chain", "not_after", "days_left", "hostname_match",
        "trusted", "trusted_by", "verify_error",
    }  # fmt: skip
    again = ServerReport.from_dict(data)
    assert again == report and again.to_dict() == data
    # The panel words the findings in German from their message ids and parameters.
    assert all(f["text_data"]["msgid"] for f in data["findings"])


def test_a_failed_check_goes_through_json_and_back_unchanged(refused_port):
    report = check_server("127.0.0.1", refused_port, mode="smtps", timeout=TIMEOUT)
    assert ServerReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
