"""The SMTP test server does what the product's tests rely on (smtplib as the client)."""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
from pathlib import Path

import pytest
from smtp_server import DEFAULT_USER, TEST_ID_HEADER, SilentServer, SmtpTestServer, header_is

pytest_plugins = ["pytester"]

TESTS_DIR = Path(__file__).resolve().parent
CLIENT_NAME = "client.example"  # smtplib would otherwise ask DNS for our FQDN
SENDER = "absender@example.org"  # one the test login owns


def _message(test_id: str, body: bytes = b"Gr\xc3\xbc\xc3\x9fe\r\n") -> bytes:
    # A leading dot (dot-stuffed on the wire) and 8-bit text: both must come back verbatim.
    return (
        b"From: Sender <absender@example.org>\r\n"
        b"To: rcpt@example.org\r\n"
        b"Subject: smtpd fixture\r\n"
        + f"{TEST_ID_HEADER}: {test_id}\r\n".encode()
        + b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b".a line that starts with a dot\r\n" + body
    )


def _context(cafile: Path, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def _open(port: int, *, implicit: bool, cafile: Path) -> smtplib.SMTP:
    ctx = _context(cafile)
    if implicit:
        return smtplib.SMTP_SSL(
            "localhost", port, local_hostname=CLIENT_NAME, context=ctx, timeout=10
        )
    client = smtplib.SMTP("localhost", port, local_hostname=CLIENT_NAME, timeout=10)
    client.starttls(context=ctx)
    return client


def _send(server: SmtpTestServer, port: int, raw: bytes, *, implicit: bool) -> None:
    with _open(port, implicit=implicit, cafile=server.ca_file) as client:
        client.login(server.user, server.password)
        client.sendmail(SENDER, ["rcpt@example.org"], raw)


@pytest.mark.parametrize(
    ("listener", "implicit"), [("starttls", False), ("smtps", True)], ids=["starttls", "smtps"]
)
def test_a_message_arrives_intact_with_auth_user_and_tls13(
    smtp: SmtpTestServer, mail_test_id: str, listener: str, implicit: bool
) -> None:
    raw = _message(mail_test_id)
    _send(smtp, smtp.ports[listener], raw, implicit=implicit)

    received = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert received.raw == raw
    assert received.message["Subject"] == "smtpd fixture"
    assert (received.listener, received.port) == (listener, smtp.ports[listener])
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ["rcpt@example.org"]
    assert received.auth_user == DEFAULT_USER == "tester@example.org"
    assert received.helo == CLIENT_NAME
    assert received.tls_version == "TLSv1.3"
    assert received.cipher
    assert received.eml_path.read_bytes() == raw
    assert json.loads(received.json_path.read_text())["tls_version"] == "TLSv1.3"


def test_the_tls12_port_negotiates_tls12(smtp: SmtpTestServer, mail_test_id: str) -> None:
    _send(smtp, smtp.tls12_port, _message(mail_test_id), implicit=True)

    assert smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id)).tls_version == "TLSv1.2"


def test_it_accepts_a_5_mb_message(smtp: SmtpTestServer, mail_test_id: str) -> None:
    body = b"x" * 998 + b"\r\n"
    raw = _message(mail_test_id, body * (5 * 1024 * 1024 // len(body) + 1))
    _send(smtp, smtp.smtps_port, raw, implicit=True)

    assert smtp.wait_for(1).raw == raw


def test_each_test_sees_only_its_own_messages(smtp: SmtpTestServer) -> None:
    assert smtp.messages() == []


def test_find_and_wait_for_pick_the_message_by_header(
    smtp: SmtpTestServer, mail_test_id: str
) -> None:
    _send(smtp, smtp.smtps_port, _message("someone-else"), implicit=True)
    _send(smtp, smtp.smtps_port, _message(mail_test_id), implicit=True)

    assert [m.n for m in smtp.find(TEST_ID_HEADER, mail_test_id)] == [smtp.wait_for(2).n]


def test_wait_for_times_out_with_a_clear_message(smtp: SmtpTestServer) -> None:
    with pytest.raises(AssertionError, match="no message matching .*within 0.1 s"):
        smtp.wait_for(header_is(TEST_ID_HEADER, "never-sent"), timeout=0.1)


def test_a_wrong_password_gets_535(smtp: SmtpTestServer) -> None:
    with (
        _open(smtp.smtps_port, implicit=True, cafile=smtp.ca_file) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as failure,
    ):
        client.login(smtp.user, "wrong password")

    assert failure.value.smtp_code == 535
    assert failure.value.smtp_error == b"5.7.8 Authentication credentials invalid"


def test_a_sender_the_login_does_not_own_is_refused_at_rcpt_like_postfix(
    smtp: SmtpTestServer,
) -> None:
    with _open(smtp.smtps_port, implicit=True, cafile=smtp.ca_file) as client:
        client.login(smtp.user, smtp.password)
        assert client.mail("fremd@example.org")[0] == 250  # postfix waits for RCPT
        code, reply = client.rcpt("rcpt@example.org")

    assert code == 553
    assert reply.decode() == (
        "5.7.1 <fremd@example.org>: Sender address rejected: not owned by user tester@example.org"
    )
    assert smtp.messages() == []


def test_the_owned_senders_are_configurable_and_case_blind(
    pki, tmp_path: Path, mail_test_id: str
) -> None:
    with SmtpTestServer(pki, tmp_path, senders={"Own@Example.org"}) as server:
        with _open(server.smtps_port, implicit=True, cafile=server.ca_file) as client:
            client.login(server.user, server.password)
            client.sendmail("own@example.ORG", ["rcpt@example.org"], _message(mail_test_id))
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail(SENDER, ["rcpt@example.org"], _message("other"))

        assert server.wait_for(1).auth_user == DEFAULT_USER
        assert server.describe()["senders"] == ["own@example.org"]


def test_auth_login_works_as_well_as_plain(smtp: SmtpTestServer) -> None:
    # smtplib's login() picks PLAIN; some mail commands prefer LOGIN.
    with _open(smtp.smtps_port, implicit=True, cafile=smtp.ca_file) as client:
        client.ehlo()
        client.user, client.password = smtp.user, smtp.password
        code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=False)

    assert code == 235


@pytest.mark.parametrize(
    ("port_name", "implicit", "trusted"),
    [
        ("smtps_port", True, "other_ca_file"),
        ("other_ca_smtps_port", True, "ca_file"),
        ("other_ca_starttls_port", False, "ca_file"),
    ],
)
def test_a_client_trusting_another_ca_fails_to_verify(
    smtp: SmtpTestServer, port_name: str, implicit: bool, trusted: str
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _open(getattr(smtp, port_name), implicit=implicit, cafile=getattr(smtp.pki, trusted))


def test_the_wrong_host_port_fails_the_hostname_check(smtp: SmtpTestServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _open(smtp.wrong_host_port, implicit=True, cafile=smtp.ca_file)


def test_the_tls12_port_refuses_a_tls13_only_client(smtp: SmtpTestServer) -> None:
    ctx = _context(smtp.ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(ssl.SSLError):
        smtplib.SMTP_SSL("localhost", smtp.tls12_port, context=ctx, timeout=10)


def test_the_silent_server_makes_a_client_time_out(silent_server: SilentServer) -> None:
    # The connection succeeds; the greeting never comes.
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        smtplib.SMTP("127.0.0.1", silent_server.port, local_hostname=CLIENT_NAME, timeout=0.3)

    assert silent_server.accepted == 1


def test_nothing_listens_on_the_refused_port(refused_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", refused_port), timeout=5)


# --- strict mode ----------------------------------------------------------

SKIPPING_TESTS = """
import pytest

@pytest.fixture
def needs_tool():
    pytest.skip("tool not installed")

def test_skips_in_its_body():
    pytest.skip("body reason")

@pytest.mark.skipif(True, reason="marker reason")
def test_skipped_by_a_marker():
    pass

def test_skipped_by_a_fixture(needs_tool):
    pass

@pytest.mark.xfail(reason="known bug")
def test_expected_to_fail():
    raise AssertionError

def test_passes():
    pass
"""


@pytest.fixture
def inner_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytest project with this suite's conftest.py and support/."""
    pytester.makeconftest((TESTS_DIR / "conftest.py").read_text())
    support = pytester.mkdir("support")
    for name in ("smtp_server.py", "pki.py"):
        (support / name).write_text((TESTS_DIR / "support" / name).read_text())
    return pytester


def _run(suite: pytest.Pytester) -> pytest.RunResult:
    # The inner run must not set up Django from the outer run's environment.
    return suite.runpytest("-p", "no:django", "-p", "no:cacheprovider", "-ra")


def test_without_strict_mode_skips_stay_skips(
    inner_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XMAILADMIN_STRICT", raising=False)
    inner_suite.makepyfile(test_inner=SKIPPING_TESTS)

    _run(inner_suite).assert_outcomes(skipped=3, passed=1, xfailed=1)


def test_strict_mode_turns_every_skip_into_a_failure(
    inner_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XMAILADMIN_STRICT", "1")
    inner_suite.makepyfile(test_inner=SKIPPING_TESTS)

    result = _run(inner_suite)

    # A skip in the setup phase (marker, fixture) counts as an error, in the body as a failure.
    result.assert_outcomes(failed=1, errors=2, passed=1, xfailed=1)
    for reason in ("body reason", "marker reason", "tool not installed"):
        result.stdout.fnmatch_lines([f"*skipped in strict mode: {reason}*"])


def test_strict_mode_fails_a_module_level_skip(
    inner_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XMAILADMIN_STRICT", "1")
    inner_suite.makepyfile(
        test_inner="import pytest\npytest.skip('module reason', allow_module_level=True)\n"
    )

    result = _run(inner_suite)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skipped in strict mode: module reason*"])
