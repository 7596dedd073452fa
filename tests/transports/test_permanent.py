"""A refusal of the message itself (5xx at RCPT) is permanent, by every command: the
outbox bounces it instead of trying the next command. A 4xx is temporary: retried."""

from __future__ import annotations

import pytest
from mailcommands import RECIPIENT, SENDER, make_target

from transports.base import Mode, Step
from transports.message import build_test_message

UNKNOWN = "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table"
LATER = "450 4.2.0 <%s>: Recipient address rejected: greylisted, try again later"
# A reply without "rejected" or "recipient": only the stage tells what was refused.
BUSY = "451 4.3.0 <%s>: busy"


@pytest.fixture
def refusing(smtp):
    yield smtp
    smtp.refused_recipients.clear()


@pytest.mark.parametrize(("reply", "permanent"), [(UNKNOWN, True), (LATER, False), (BUSY, False)],
                         ids=["550", "450", "451-bare"])  # fmt: skip
def test_a_refused_recipient_is_permanent_only_for_a_5xx(command, refusing, reply, permanent):
    refusing.refused_recipients[RECIPIENT.lower()] = reply % RECIPIENT
    message = build_test_message(sender=SENDER, recipient=RECIPIENT,
                                 command=command.key)  # fmt: skip
    result = command.transport().send(make_target(refusing, Mode.STARTTLS), message)

    assert not result.ok
    if reply is BUSY and command.id == "heirloom-syntax-on-s-nail":
        # Heirloom's options make s-nail echo no dialogue, and the reply names no stage.
        assert result.step is Step.UNKNOWN and "451 4.3.0" in result.detail + str(result.reason)
    else:
        assert result.step is Step.RCPT_TO, (result.reason, result.transcript[-800:])
    assert result.permanent is permanent, (str(result.reason), result.detail)
    assert refusing.messages() == []
