"""mutt and GNU Mailutils name no TLS version themselves: the pass reports the one
their GnuTLS negotiated, the same the server saw, and no GnuTLS debug line remains."""

from __future__ import annotations

import pytest
from mailcommands import RECIPIENT, SENDER, make_target
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode
from transports.catalogue import transport_for
from transports.message import build_test_message


@pytest.fixture(params=["mutt", "mailx-mailutils"])
def gnutls_command(request):
    transport = transport_for(request.param)
    if transport.which() is None:
        pytest.skip(f"{request.param} is not installed (CI installs it)")
    return transport


@pytest.mark.parametrize(
    ("mode", "port"),
    [(Mode.STARTTLS, "starttls_port"), (Mode.SMTPS, "smtps_port"), (Mode.SMTPS, "tls12_port")],
    ids=["starttls", "smtps", "smtps-tls12"],
)
def test_the_pass_names_the_tls_version_the_server_saw(
    gnutls_command, mode, port, smtp, mail_test_id
):
    message = build_test_message(
        sender=SENDER, recipient=RECIPIENT, command=gnutls_command.key, test_id=mail_test_id
    )
    target = make_target(smtp, mode, port=getattr(smtp, port))
    result = gnutls_command.send(target, message)

    assert result.ok, result.transcript
    received = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert received.tls_version in ("TLSv1.2", "TLSv1.3")
    assert result.tls_version == received.tls_version
    assert "gnutls[" not in result.transcript  # the library's log is read, not shown
    assert "RCPT TO" in result.transcript  # the tool's own dialogue stays


def test_a_failed_handshake_is_still_told_in_the_tools_words(gnutls_command, smtp):
    target = make_target(smtp, Mode.SMTPS, port=smtp.other_ca_smtps_port)
    message = build_test_message(sender=SENDER, recipient=RECIPIENT, command=gnutls_command.key)
    result = gnutls_command.send(target, message)

    if gnutls_command.verifies_certificate:
        assert not result.ok and result.step.value == "tls", result.transcript
    assert "gnutls[" not in result.transcript + result.detail


def test_docstring_examples():
    import doctest

    from transports import gnutls_log

    assert doctest.testmod(gnutls_log).failed == 0
