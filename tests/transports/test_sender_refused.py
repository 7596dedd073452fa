"""A sender the login does not own is reported as a refused sender, by every command.

Postfix (reject_sender_login_mismatch) answers it at RCPT, not at MAIL FROM:
``553 5.7.1 <sender>: Sender address rejected: not owned by user U``. Read by the
SMTP stage alone, that was "the server refused the recipient", the wrong thing to fix.
The test server answers the same way (tests/support/smtp_server.py).
"""

from __future__ import annotations

import pytest
from mailcommands import RECIPIENT, make_target

from transports.base import Mode, Step
from transports.message import build_test_message

FOREIGN = "fremd@example.org"  # not among the test login's senders
REFUSAL = "Sender address rejected: not owned by user tester@example.org"


@pytest.mark.parametrize("mode", [Mode.STARTTLS, Mode.SMTPS], ids=lambda m: m.value)
def test_a_sender_the_login_does_not_own_is_reported_as_the_sender(command, mode, smtp):
    assert FOREIGN not in smtp.senders
    message = build_test_message(sender=FOREIGN, recipient=RECIPIENT, command=command.key)
    result = command.transport().send(make_target(smtp, mode, sender=FOREIGN), message)

    assert not result.ok
    shown = str(result.reason)
    assert result.reason_code == "sender_refused", (shown, result.transcript)
    assert result.step is Step.MAIL_FROM, shown
    assert FOREIGN in shown
    assert "553" in shown and REFUSAL in shown, "the server's own words belong in the reason"
    assert "recipient" not in shown.replace(REFUSAL, "")
    assert smtp.messages() == []
