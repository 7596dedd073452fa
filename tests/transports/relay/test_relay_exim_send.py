"""A real exim (Debian's exim4 configuration, private copy) relaying to the test server."""

from __future__ import annotations

import subprocess

import pytest
from relaycases import LIMIT, MODES, applied, relay_send
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode, Step


def queued(exim) -> int:
    out = subprocess.run([*exim.relay.exim(), "-bpc"], capture_output=True, text=True, timeout=10)
    return int(out.stdout.strip() or 0)


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_a_delivered_message_is_a_pass_and_arrives(exim, smtp, mode, mail_test_id):
    account = applied(exim, smtp, mode)

    result = relay_send(exim, account, mail_test_id)

    assert result.ok, str(result.reason)
    assert result.step is Step.DONE and result.delivered is True
    received = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert received.mode == mode.value
    assert received.auth_user == smtp.user
    assert result.tls_version == received.tls_version == "TLSv1.3"
    assert result.verified  # CV=yes
    assert not result.warnings


def test_a_wrong_password_fails_with_535_and_never_passes(exim, smtp, mail_test_id):
    # The login is required (Debian's transport only tries it): exim defers at once,
    # and the authenticator's 535 is the reason shown.
    account = applied(exim, smtp, Mode.SMTPS, password="not-the-password")

    result = relay_send(exim, account, mail_test_id)

    assert not result.ok and result.delivered is False
    assert result.step is Step.AUTH
    assert "deferred" in str(result.reason)
    assert "535" in str(result.reason)
    assert "authentication required" in str(result.reason)
    assert result.duration_s < LIMIT
    assert not smtp.find(TEST_ID_HEADER, mail_test_id)
    assert queued(exim) == 0  # neither the test message nor its bounce stays behind


def test_an_unreachable_relay_target_is_deferred_within_the_limit(
    exim, smtp, refused_port, mail_test_id
):
    account = applied(exim, smtp, Mode.STARTTLS, port=refused_port)

    result = relay_send(exim, account, mail_test_id)

    assert not result.ok
    assert result.step is Step.CONNECT
    assert "deferred" in str(result.reason) and "Connection refused" in str(result.reason)
    assert result.duration_s < LIMIT
    assert queued(exim) == 0


def test_a_certificate_for_another_name_is_deferred_at_tls(exim, smtp, mail_test_id):
    account = applied(exim, smtp, Mode.SMTPS, port=smtp.wrong_host_port)

    result = relay_send(exim, account, mail_test_id)

    assert not result.ok
    assert result.step is Step.TLS
    assert "certificate verification failed" in str(result.reason)


def test_a_server_that_never_answers_is_still_queued_at_the_limit(
    exim, smtp, silent_server, mail_test_id
):
    account = applied(exim, smtp, Mode.SMTPS, port=silent_server.port)

    result = relay_send(exim, account, mail_test_id, timeout=3)

    assert not result.ok
    assert result.step is Step.TIMEOUT
    assert "still queued" in str(result.reason) and "after 3 s" in str(result.reason)
    assert 3 <= result.duration_s < 8


def test_the_password_stays_in_passwd_client(exim, smtp, mail_test_id):
    account = applied(exim, smtp, Mode.SMTPS)

    result = relay_send(exim, account, mail_test_id)

    assert result.ok
    assert smtp.password not in result.transcript + str(result.reason) + result.detail
    assert smtp.password not in exim.log()
    assert smtp.password not in exim.config_file.read_text()
    passwd = exim.conf_dir / "passwd.client"
    assert passwd.stat().st_mode & 0o777 == 0o640  # Debian's: root and Debian-exim only
    assert passwd.group() == "Debian-exim"
