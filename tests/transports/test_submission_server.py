"""Every mail command against a provider-like server: postfix with Dovecot SASL.

The aiosmtpd server (test_send.py) answers as postfix would; this is postfix
(tests/support/submission_server.py): Dovecot checks the password, postfix's own
STARTTLS and implicit-TLS listeners speak TLS, ``reject_sender_login_mismatch``
refuses a foreign sender at RCPT, and virtual(8) writes the message into a Maildir,
where Return-Path shows the envelope sender and Received the TLS version.
"""

from __future__ import annotations

import pytest
from mailcommands import RECIPIENT, SENDER, SMTP_COMMANDS, VERBATIM, make_target

from transports.base import Mode, Step
from transports.catalogue import KEYS
from transports.message import build_test_message

MODES = [Mode.STARTTLS, Mode.SMTPS]
FOREIGN = "fremd@example.org"  # not among the test login's senders
REFUSAL = "553 5.7.1 <fremd@example.org>: Sender address rejected: not owned by user"

# The catalogue rows the `command` matrix leaves out, and why: they speak no SMTP to
# a provider themselves, or cannot run at all.
NOT_SENT_HERE = {
    "postfix": "its sendmail queues locally; the relay reaches the provider "
    "(tests/transports/relay/test_relay_postfix_send.py)",
    "exim": "its sendmail queues locally; the relay reaches the provider "
    "(tests/transports/relay/test_relay_exim_send.py)",
    "mailx-bsd": "hands the message to the local sendmail, i.e. to the relay path",
    "snail15": "s-nail 15 is not released: there is no binary to send with "
    "(test_s_nail.py tests its detection on a stand-in)",
}


def message(command: str, sender: str = SENDER, test_id: str | None = None) -> bytes:
    return build_test_message(sender=sender, recipient=RECIPIENT, command=command, test_id=test_id)


def test_every_catalogue_row_is_sent_here_or_left_out_for_a_reason():
    sent = {command.key for command in SMTP_COMMANDS}
    assert sent.isdisjoint(NOT_SENT_HERE)
    assert sent | NOT_SENT_HERE.keys() == set(KEYS)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_it_is_delivered_with_the_envelope_sender_over_tls_1_3(
    command, mode, submission_server, mail_test_id
):
    sent = message(command.key, test_id=mail_test_id)
    result = command.transport().send(make_target(submission_server, mode), sent)

    assert result.ok, result.transcript
    assert result.step is Step.DONE
    got = submission_server.wait_for(mail_test_id, RECIPIENT.partition("@")[2])
    assert got.return_path == f"<{SENDER}>", "the envelope sender must be the account's sender"
    assert str(got.message["Delivered-To"]) == RECIPIENT
    assert "using TLSv1.3 with cipher" in got.received, got.received
    assert "with ESMTPSA" in got.received, "postfix saw no TLS with AUTH"
    assert "äöü ÄÖÜ ß" in got.message["Subject"]
    if command.id in VERBATIM:
        assert result.tls_version == "TLSv1.3"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_a_sender_the_login_does_not_own_is_refused_in_postfix_words(
    command, mode, submission_server
):
    target = make_target(submission_server, mode, sender=FOREIGN)
    result = command.transport().send(target, message(command.key, sender=FOREIGN))

    assert not result.ok
    shown = str(result.reason)
    assert result.reason_code == "sender_refused", (shown, result.transcript)
    assert result.step is Step.MAIL_FROM, shown
    assert REFUSAL in shown, "the server's own words belong in the reason"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_a_wrong_password_fails_at_auth(command, mode, submission_server):
    target = make_target(submission_server, mode, password="wrong-Passw0rd")
    result = command.transport().send(target, message(command.key))

    assert not result.ok
    assert result.step is Step.AUTH, result.transcript
    assert "user or password" in str(result.reason)
