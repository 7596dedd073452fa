"""What a relay test proves, against real postfix and exim instances: that the relay
logged in with the account (a server that takes mail from anyone proves nothing), and
that a failed test leaves nothing behind: no retry in the queue, no bounce in the
sender's mailbox."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time

import pytest
from relaycases import applied, make_message, relay_target
from smtp_server import TEST_ID_HEADER, SmtpTestServer

from transports.base import Mode, Step

MTAS = ["postfix", "exim"]
# Not among the senders the test server's login owns: refused at RCPT with 553.
FOREIGN_SENDER = "fremder@example.org"
# How long a bounce would take to arrive once made: a loopback delivery takes ~0.2 s.
BOUNCE_WAIT = 3.0


@pytest.fixture
def open_server(pki, tmp_path):
    """A server that offers AUTH but takes mail without it, as an open relay would."""
    with SmtpTestServer(pki, tmp_path, auth_required=False) as server:
        yield server


def queued(instance) -> str:
    """The relay's queue listing; empty when nothing is queued."""
    if hasattr(instance.relay, "exim"):
        argv = [*instance.relay.exim(), "-bp"]
    else:
        argv = ["postqueue", "-c", str(instance.config_dir), "-p"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return "" if "empty" in out.stdout else out.stdout.strip()


def bounce_deliveries(instance) -> list[str]:
    """The relay's log lines of a bounce that was queued to go out (postfix) or tried
    (exim, whose test-send bounce only queues, to be removed)."""
    log = instance.log().splitlines()
    if hasattr(instance.relay, "exim"):
        ids = {line.split()[2] for line in log if " <= <> R=" in line}
        marks = (" => ", " -> ", " ** ", " == ")
        return [
            ln
            for ln in log
            if ln.split()[2:3] and ln.split()[2] in ids and any(m in ln for m in marks)
        ]
    return [line for line in log if "from=<>" in line]


def bounces(server: SmtpTestServer) -> list:
    """Messages with the null sender: the bounces that reached a mailbox."""
    time.sleep(BOUNCE_WAIT)
    return [m for m in server.messages() if m.mail_from in ("", "<>")]


@pytest.mark.parametrize("mta", MTAS)
def test_a_wrong_password_never_passes_on_a_server_that_takes_mail_without_login(
    mta, request, open_server, mail_test_id
):
    instance = request.getfixturevalue(mta)
    account = applied(instance, open_server, Mode.SMTPS, password="not-the-password")

    result = instance.relay.test_send(relay_target(account), make_message(mail_test_id))

    assert not result.ok and result.delivered is False, str(result.reason)
    assert result.step is Step.AUTH
    assert "535" in str(result.reason)
    # The relay must not fall back to delivering without the login.
    assert not open_server.find(TEST_ID_HEADER, mail_test_id)
    assert queued(instance) == ""


def test_an_exim_delivery_without_login_is_no_pass(exim, open_server, mail_test_id):
    # An exim whose login is not required (the file that requires it removed by hand):
    # the login fails, exim delivers without it. The message arrived, but the account's
    # password was not what let it through.
    account = applied(exim, open_server, Mode.SMTPS, password="not-the-password")
    os.unlink(exim.relay.require_auth_file)
    subprocess.run(exim.relay.update_argv(), check=True, capture_output=True, timeout=60)

    result = exim.relay.test_send(relay_target(account), make_message(mail_test_id))

    (received,) = open_server.find(TEST_ID_HEADER, mail_test_id)
    assert received.auth_user is None  # the server saw no login
    assert not result.ok
    assert result.step is Step.AUTH and result.reason_code == "relay_not_authenticated"
    assert "without logging in" in str(result.reason)
    assert "hosts_require_auth" in {
        d.setting for d in exim.relay.compare(exim.relay.status(), account)
    }


def test_a_postfix_delivery_to_a_server_that_offers_no_login_is_no_pass(
    postfix, pki, tmp_path, mail_test_id
):
    # postfix has no setting that refuses a server without AUTH: it just sends. The
    # message arrives, yet nothing proved the account's login.
    with SmtpTestServer(pki, tmp_path, auth_required=False, offer_auth=False) as server:
        account = applied(postfix, server, Mode.SMTPS)
        result = postfix.relay.test_send(relay_target(account), make_message(mail_test_id))
        (received,) = server.find(TEST_ID_HEADER, mail_test_id)

    assert received.auth_user is None
    assert not result.ok and result.delivered is True
    assert result.step is Step.AUTH and result.reason_code == "relay_not_authenticated"


def test_a_postfix_delivery_with_the_login_passes(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.SMTPS)

    result = postfix.relay.test_send(relay_target(account), make_message(mail_test_id))

    (received,) = smtp.find(TEST_ID_HEADER, mail_test_id)
    assert received.auth_user == smtp.user and result.ok, str(result.reason)
    assert postfix.relay.logged_in(relay_target(account)) is True


@pytest.mark.parametrize("mta", MTAS)
def test_a_refused_sender_leaves_no_bounce_queued_or_delivered(mta, request, smtp, mail_test_id):
    instance = request.getfixturevalue(mta)
    account = applied(instance, smtp, Mode.SMTPS)
    target = dataclasses.replace(relay_target(account), sender=FOREIGN_SENDER)

    result = instance.relay.test_send(target, make_message(mail_test_id))

    assert not result.ok and result.delivered is False
    assert "bounced" in str(result.reason) and "553" in str(result.reason)
    assert not smtp.find(TEST_ID_HEADER, mail_test_id)
    assert bounce_deliveries(instance) == []
    assert bounces(smtp) == []
    assert queued(instance) == ""
