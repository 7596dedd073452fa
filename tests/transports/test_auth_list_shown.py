"""The transcript masks the AUTH exchange's credentials, not the server's list of
mechanisms, whichever mechanisms a real server names there."""

from __future__ import annotations

import pytest
import smtp_server
from mailcommands import RECIPIENT, SENDER, make_target
from smtp_server import TEST_ID_HEADER, SmtpTestServer, header_is

from transports.base import Mode
from transports.catalogue import transport_for
from transports.message import build_test_message
from transports.secrecy import MASK, redact


async def _refuse(server, args):
    return smtp_server.AuthResult(success=False, handled=False)


class RealisticServer(SmtpTestServer):
    """Offers NTLM and SCRAM-SHA-256 besides LOGIN and PLAIN, as Exchange or Dovecot do.
    python3 and msmtp pick neither, so they still log in by PLAIN or LOGIN."""

    def _make_smtp(self, handler, ctx, loop):
        # aiosmtpd offers every auth_<NAME> of the handler too ("__" is "-").
        handler.auth_NTLM = handler.auth_SCRAM__SHA__256 = _refuse
        return super()._make_smtp(handler, ctx, loop)


@pytest.fixture
def realistic(pki, tmp_path):
    with RealisticServer(pki, tmp_path) as server:
        yield server


@pytest.mark.parametrize("key", ["python3", "msmtp"])
def test_the_mechanism_list_stays_readable_and_the_login_is_masked(key, realistic, mail_test_id):
    transport = transport_for(key)
    if transport.which() is None:
        pytest.skip(f"{key} is not installed (CI installs it)")
    message = build_test_message(
        sender=SENDER, recipient=RECIPIENT, command=key, test_id=mail_test_id
    )
    result = transport.send(make_target(realistic, Mode.STARTTLS), message)

    assert result.ok, result.transcript
    realistic.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert "LOGIN NTLM PLAIN SCRAM-SHA-256" in result.transcript
    assert f"LOGIN {MASK}" not in result.transcript
    assert realistic.password not in result.transcript


@pytest.mark.parametrize(
    "line",
    [
        "reply: retcode (250); Msg: b'localhost\\nAUTH GSSAPI LOGIN NTLM\\nHELP'",
        "S: 250-AUTH LOGIN DIGEST-MD5 OAUTHBEARER",
        "<-- 250 AUTH PLAIN LOGIN XOAUTH2",
    ],
)
def test_a_capability_line_is_no_secret(line):
    assert redact(line, "tester", "not-in-it") == line


@pytest.mark.parametrize(
    ("line", "blob"),
    [
        ("send: 'AUTH PLAIN AHVzZXIAb3RoZXI=\\r\\n'", "AHVzZXIAb3RoZXI="),
        ("4> AUTH LOGIN dXNlcg==", "dXNlcg=="),
        ("C: auth xoauth2 dXNlcj1hAWF1dGg9QmVhcmVyIHgBAQ==", "dXNlcj1hAWF1dGg9QmVhcmVyIHgBAQ=="),
    ],
)
def test_the_credentials_after_auth_are_masked_and_the_rest_of_the_line_kept(line, blob):
    out = redact(line, "tester", "not-in-it")
    assert blob not in out and MASK in out
    assert out == line.replace(blob, MASK)
