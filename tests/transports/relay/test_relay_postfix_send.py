"""A real postfix relaying to the loopback test server: a pass only once delivered."""

from __future__ import annotations

import json
import subprocess

import pytest
from relaycases import LIMIT, MODES, applied, relay_send, relay_target
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode, Step


def queue_of(postfix) -> list[dict]:
    out = subprocess.run(
        ["postqueue", "-c", str(postfix.config_dir), "-j"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_a_delivered_message_is_a_pass_and_arrives(postfix, smtp, mode, mail_test_id):
    account = applied(postfix, smtp, mode)

    result = relay_send(postfix, account, mail_test_id)

    assert result.ok, str(result.reason)
    assert result.step is Step.DONE
    assert result.delivered is True
    received = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert received.mode == mode.value
    assert received.auth_user == smtp.user
    assert result.tls_version == received.tls_version == "TLSv1.3"
    assert result.verified  # "Verified TLS connection": chain and name match=localhost
    assert "250" in str(result.reason)
    assert not result.warnings


def test_a_wrong_password_is_deferred_with_535_and_never_a_pass(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.SMTPS, password="not-the-password")

    result = relay_send(postfix, account, mail_test_id)

    assert not result.ok
    assert result.delivered is False
    assert result.step is Step.AUTH
    assert "deferred" in str(result.reason)
    assert "535" in str(result.reason)
    assert result.duration_s < LIMIT
    assert not smtp.find(TEST_ID_HEADER, mail_test_id)
    assert queue_of(postfix) == []  # a failed test message is not retried later


def test_an_unreachable_relay_target_is_deferred_within_the_limit(
    postfix, smtp, refused_port, mail_test_id
):
    account = applied(postfix, smtp, Mode.STARTTLS, port=refused_port)

    result = relay_send(postfix, account, mail_test_id)

    assert not result.ok
    assert result.step is Step.CONNECT
    assert "Connection refused" in str(result.reason)
    assert result.duration_s < LIMIT


def test_a_certificate_for_another_name_is_deferred_at_tls(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.SMTPS, port=smtp.wrong_host_port)

    result = relay_send(postfix, account, mail_test_id)

    assert not result.ok
    assert result.step is Step.TLS
    assert "not verified" in str(result.reason)
    assert not smtp.find(TEST_ID_HEADER, mail_test_id)


def test_the_wrong_mode_for_the_port_fails_at_tls(postfix, smtp, mail_test_id):
    # STARTTLS against the implicit-TLS port: postfix waits for a greeting that never comes.
    account = applied(postfix, smtp, Mode.STARTTLS, port=smtp.smtps_port)

    result = relay_send(postfix, account, mail_test_id)

    assert not result.ok
    assert result.step is Step.TLS
    assert "initial server greeting" in str(result.reason)


def test_a_server_that_never_answers_is_still_queued_at_the_limit(
    postfix, smtp, silent_server, mail_test_id
):
    account = applied(postfix, smtp, Mode.SMTPS, port=silent_server.port)

    result = relay_send(postfix, account, mail_test_id, timeout=3)

    assert not result.ok
    assert result.step is Step.TIMEOUT
    assert "still queued" in str(result.reason)
    assert "after 3 s" in str(result.reason)
    assert 3 <= result.duration_s < 8
    assert queue_of(postfix) == []


def test_the_password_stays_in_the_0600_map(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.SMTPS)

    result = relay_send(postfix, account, mail_test_id)

    assert result.ok
    assert smtp.password not in (postfix.config_dir / "main.cf").read_text()
    assert smtp.password not in result.transcript + str(result.reason) + result.detail
    assert smtp.password not in postfix.log()
    sasl = postfix.config_dir / "sasl_passwd"
    assert sasl.stat().st_mode & 0o777 == 0o600
    assert smtp.password in sasl.read_text()


def test_a_message_without_message_id_gets_one_and_is_followed(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.STARTTLS)
    bare = f"Subject: bare\n{TEST_ID_HEADER}: {mail_test_id}\n\nno Message-ID\n".encode()

    result = postfix.relay.test_send(relay_target(account), bare)

    assert result.ok, str(result.reason)
    received = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert "xmailadmin" in received.message["Message-ID"]
