"""User names that look like addresses, URLs or options reach the server as written.

A user name goes into mutt's and s-nail's SMTP URL, curl's config and the send
scripts' argv. Unencoded, ``x@127.0.0.1:PORT/`` sent the stored password to
another server; ``--help@x`` was taken for an option.
"""

from __future__ import annotations

import pytest
from mailcommands import make_target
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode, Step
from transports.message import build_test_message


def sample(command, test_id: str = "0") -> bytes:
    return build_test_message(
        sender="absender@example.org", recipient="empfaenger@example.net",
        command=command.key, test_id=test_id,
    )  # fmt: skip


@pytest.mark.parametrize("mode", [Mode.STARTTLS, Mode.SMTPS], ids=lambda m: m.value)
def test_a_login_that_is_an_address_works(command, mode, smtp, mail_test_id):
    # The suite's server logs in with an address, as most providers' do.
    message = sample(command, mail_test_id)
    result = command.transport().send(make_target(smtp, mode), message)
    assert result.ok, result.transcript
    got = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert got.auth_user == "tester@example.org"


def test_a_user_name_cannot_send_the_connection_elsewhere(command, smtp, silent_server):
    user = f"tester@127.0.0.1:{silent_server.port}/"
    target = make_target(smtp, Mode.STARTTLS, user=user, timeout=10.0)
    result = command.transport().send(target, sample(command))
    assert silent_server.accepted == 0, f"{command.id} connected to the host in the user name"
    assert not result.ok
    assert result.step is Step.AUTH, (result.step, str(result.reason))


def test_a_user_name_like_an_option_is_a_user_name(command, smtp):
    target = make_target(smtp, Mode.STARTTLS, user="--help@example.org", timeout=10.0)
    result = command.transport().send(target, sample(command))
    assert not result.ok
    assert result.step is Step.AUTH, (command.id, result.step, result.reason, result.transcript)
