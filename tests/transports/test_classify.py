"""The reply, not the SMTP stage alone, says what the server refused (classify.py).

The cross-command tests (test_sender_refused.py, test_tls_names.py) run the real
commands; these pin the replies of other servers that the test server does not give.
"""

from __future__ import annotations

import pytest
from mailcommands import make_target

from transports.base import Mode, Step
from transports.classify import failed_at, key_line, with_server_reply


@pytest.fixture
def target(smtp):
    return make_target(smtp, Mode.STARTTLS)


@pytest.mark.parametrize(
    ("step", "reply"),
    [
        # postfix, smtpd_delay_reject=yes: sender restrictions are answered at RCPT
        (Step.RCPT_TO, "553 5.7.1 <a@example.org>: Sender address rejected: not owned by user u"),
        # RFC 3463 X.1.8: bad sender's system address, whatever the words
        (Step.RCPT_TO, "550 5.1.8 <a@example.org>: Domain of sender address does not exist"),
        (Step.DATA, "554 5.7.1 <a@example.org>: Sender address rejected: Access denied"),
        (Step.MAIL_FROM, "553 5.7.1 Sender address rejected: not owned by user u"),
    ],
)
def test_a_refused_sender_is_the_sender_at_any_stage(target, step, reply):
    result = failed_at(step, target, reply)

    assert (result.step, result.reason_code) == (Step.MAIL_FROM, "sender_refused")
    assert str(result.reason).endswith(f"({reply})")


@pytest.mark.parametrize(
    "reply",
    [
        "550 5.1.1 <b@example.net>: Recipient address rejected: User unknown",
        "554 5.7.1 <b@example.net>: Relay access denied",
    ],
)
def test_a_refused_recipient_stays_the_recipient(target, reply):
    result = failed_at(Step.RCPT_TO, target, reply)

    assert (result.step, result.reason_code) == (Step.RCPT_TO, "rcpt_to")
    assert "recipient" in str(result.reason)


def test_the_servers_words_join_a_tool_line_that_names_only_the_code():
    transcript = "> RCPT TO:<b@example.net>\n< 553 5.7.1 Sender address rejected\n"

    assert with_server_reply("curl: (55) RCPT failed: 553", transcript) == (
        "curl: (55) RCPT failed: 553 / 553 5.7.1 Sender address rejected"
    )
    line = "msmtp: server message: 553 5.7.1 Sender address rejected"
    assert with_server_reply(line, transcript) == line


def test_openssls_own_verify_reason_beats_its_generic_failure_line():
    err = (
        "depth=0 O = xmailadmin tests, CN = wrong.example\n"
        "verify error:num=64:IP address mismatch\n"
        "80:error:0A000086:SSL routines:tls_post_process_server_certificate:"
        "certificate verify failed:../ssl/statem/statem_clnt.c:1889:\n"
    )
    assert key_line(err) == "verify error:num=64:IP address mismatch"
