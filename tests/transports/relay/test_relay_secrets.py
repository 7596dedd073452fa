"""The relay path keeps the password secret too: in no argv or environment while the
configuration is applied and a message is sent, in no transcript, only in the one file
the relay reads it from; and a password full of special characters still logs in."""

from __future__ import annotations

import pytest
from process_watch import ProcessWatcher
from relaycases import make_message, relay_account, relay_target
from smtp_server import TEST_ID_HEADER, SmtpTestServer, header_is

from transports.base import Mode

# Quotes, blanks, shell characters, a backslash, non-ASCII; ':' (both password files split
# there) and '^' (exim's PLAIN separator) too.
TRICKY = "pä$s w'o\"r\\d;|&`x`!#:^end"


@pytest.fixture
def tricky_server(pki, tmp_path):
    with SmtpTestServer(pki, tmp_path, password=TRICKY) as server:
        yield server


@pytest.mark.parametrize("mta", ["postfix", "exim"])
def test_a_tricky_password_logs_in_and_shows_nowhere(mta, request, tricky_server, mail_test_id):
    instance = request.getfixturevalue(mta)
    account = relay_account(tricky_server, Mode.SMTPS, instance.ca_file)

    with ProcessWatcher(TRICKY) as watcher:
        applied = instance.relay.apply(account, confirm=True)
        result = instance.relay.test_send(relay_target(account), make_message(mail_test_id))

    assert applied.ok, str(applied.reason)
    assert result.ok, str(result.reason)
    tricky_server.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert watcher.leaks == []
    assert {"postfix": "sendmail", "exim": "exim4"}[mta] in watcher.seen  # the watch worked
    shown = result.transcript + str(result.reason) + result.detail + repr(applied)
    assert TRICKY not in shown and TRICKY not in instance.log()
    status = instance.relay.status()
    assert TRICKY not in repr(status.to_dict())
    assert instance.relay.compare(status, account) == []  # the digest matches
