"""A relay's test send shows the relay's own log lines of the message as its transcript
(no "(no transcript)" for postfix or exim: their sendmail prints nothing)."""

from __future__ import annotations

import dataclasses

import pytest
from relaycases import applied, make_message, relay_send, relay_target
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode
from transports.relay.follow import Queue
from transports.relay.postfix_log import PostfixFollower


@pytest.mark.parametrize("mta", ["postfix", "exim"])
def test_the_transcript_is_the_relays_log_of_the_message(mta, request, smtp, mail_test_id):
    relay = request.getfixturevalue(mta)
    account = applied(relay, smtp, Mode.SMTPS)

    result = relay_send(relay, account, mail_test_id)

    assert result.ok, str(result.reason)
    smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    lines = result.transcript.splitlines()
    assert len(lines) >= 2, result.transcript
    if mta == "postfix":
        queue_id = lines[0].split(": ")[1]
        assert "message-id=<" in lines[0]
        assert all(f": {queue_id}: " in line for line in lines)
        assert any("status=sent" in line for line in lines)
    else:
        assert any("=>" in line for line in lines) and any("Completed" in line for line in lines)
    assert smtp.password not in result.transcript


def without_log(postfix) -> Queue:
    """The private postfix's queue, followed as when no mail log can be found (a log in
    journald only): by ``postqueue`` alone."""
    queue = postfix.relay.queue()
    config = ["-c", str(postfix.config_dir)]

    def follower(target):
        return PostfixFollower(None, ["postqueue", *config], ["postsuper", *config], target)

    return dataclasses.replace(queue, follower=follower)


def test_without_a_log_the_transcript_says_what_the_queue_showed(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.SMTPS, password="not-the-password")

    result = without_log(postfix).test_send(relay_target(account, 6), make_message(mail_test_id))

    assert not result.ok
    assert "no log line of <" in result.transcript, result.transcript
    assert "in the queue as " in result.transcript
    assert "not-the-password" not in result.transcript
