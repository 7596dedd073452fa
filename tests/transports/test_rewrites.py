"""What the mail clients change in a message: measured, and said in their result.

The vendor calls mutt and the mailx family "faulty processing". These tests
pin down what that means today, so a change in a tool shows up here.
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from mailcommands import RECIPIENT, SENDER, Command, make_target
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode
from transports.message import build_test_message

CASES = [
    # command, headers whose values differ after sending
    (Command("mutt", "mutt"), {"from", "date", "content-transfer-encoding", "content-disposition"}),
    (Command("mailutils", "mailx-mailutils"), {"date", "user-agent"}),
    (Command("s-nail", "snail14"), {"date", "mime-version", "content-type", "user-agent"}),
    (
        Command("heirloom-syntax-on-s-nail", "mailx-heirloom", "s-nail"),
        {"date", "mime-version", "content-type", "user-agent"},
    ),
]


def changed_headers(sent: bytes, received: bytes) -> set[str]:
    a = email.message_from_bytes(sent, policy=email.policy.default)
    b = email.message_from_bytes(received, policy=email.policy.default)
    names = {k.lower() for k in a} | {k.lower() for k in b}
    return {
        n for n in names if [str(v) for v in a.get_all(n, [])] != [str(v) for v in b.get_all(n, [])]
    }


@pytest.mark.parametrize(("command", "changed"), CASES, ids=[c.id for c, _ in CASES])
def test_the_rewrites_are_known_and_reported(command, changed, smtp, mail_test_id):
    command.require()
    sent = build_test_message(
        sender=SENDER, recipient=RECIPIENT, command=command.key, test_id=mail_test_id
    )
    # A Date from the past: a tool that writes its own Date shows it every time, not only
    # when the send happens to cross a second.
    sent = re.sub(rb"(?m)^Date: .*$", b"Date: Mon, 01 Jan 2024 00:00:00 +0000", sent, count=1)
    result = command.transport().send(make_target(smtp, Mode.STARTTLS), sent)

    assert result.ok, result.transcript
    got = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert changed_headers(sent, got.raw) == changed
    warning = " ".join(map(str, result.warnings))
    assert "faulty processing" in warning
    for name in changed - {"content-transfer-encoding"}:
        assert name.split("-")[-1] in warning.lower(), f"{name} missing from: {warning}"
