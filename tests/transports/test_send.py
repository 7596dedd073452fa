"""Every mail command sends a real message to the loopback SMTP server, and fails well."""

from __future__ import annotations

import email.policy
from email import message_from_bytes

import pytest
from mailcommands import RECIPIENT, SENDER, UNVERIFIED, VERBATIM, make_target, plain_target
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode, Step
from transports.message import build_test_message

MODES = [Mode.STARTTLS, Mode.SMTPS]


def sent_message(command: str, test_id: str, body: str | None = None) -> bytes:
    return build_test_message(
        sender=SENDER, recipient=RECIPIENT, command=command, test_id=test_id, body=body
    )


def parsed(raw: bytes):
    return message_from_bytes(raw, policy=email.policy.default)


def wire_text(message) -> str:
    """The decoded body with the wire's CRLF turned back into LF."""
    return message.get_content().replace("\r\n", "\n")


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_it_delivers_the_message_intact_with_auth(command, mode, smtp, mail_test_id):
    message = sent_message(command.key, mail_test_id)
    result = command.transport().send(make_target(smtp, mode), message)

    assert result.ok, result.transcript
    assert result.step is Step.DONE
    got = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert got.auth_user == smtp.user
    assert got.mode == mode.value
    assert got.mail_from == SENDER, "the envelope sender must be the account's sender"
    assert got.rcpt_tos == [RECIPIENT]
    assert got.tls_version in ("TLSv1.2", "TLSv1.3")
    want = parsed(message)
    assert got.message["Subject"] == want["Subject"]  # umlauts survive
    assert "äöü ÄÖÜ ß" in got.message["Subject"]
    assert wire_text(got.message) == want.get_content()
    assert b"\n" not in got.raw.replace(b"\r\n", b""), "bare LF on the wire"
    if command.id in VERBATIM:
        assert got.raw.replace(b"\r\n", b"\n") == message
        assert result.tls_version == got.tls_version
    else:
        assert result.warnings, "a command that rewrites must say so"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_it_delivers_a_one_megabyte_body(command, mode, smtp, mail_test_id):
    line = "Zeile mit Umlauten äöü und einem Punkt am Anfang der nächsten:\n.\n"
    body = line * (1024 * 1024 // len(line.encode()) + 1)
    result = command.transport().send(
        make_target(smtp, mode), sent_message(command.key, mail_test_id, body)
    )

    assert result.ok, result.transcript
    got = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert wire_text(got.message) == body
    assert len(result.transcript) <= 25_000  # long dialogues are cut, not stored whole


def test_a_wrong_password_fails_at_auth(command, smtp):
    result = command.transport().send(
        make_target(smtp, Mode.STARTTLS, password="wrong-Passw0rd"), sent_message(command.key, "x")
    )

    assert not result.ok
    assert result.step is Step.AUTH, result.transcript
    assert "user or password" in str(result.reason)
    assert smtp.messages() == []


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_a_certificate_from_another_ca_fails_at_tls(command, mode, smtp_server, smtp):
    port = smtp.other_ca_smtps_port if mode is Mode.SMTPS else smtp.other_ca_starttls_port
    result = command.transport().send(
        make_target(smtp, mode, port=port), sent_message(command.key, "x")
    )

    if command.id in UNVERIFIED:
        # It sends anyway; the product must never call that a clean pass.
        assert result.verified is False
        assert any("not verified" in w for w in map(str, result.warnings))
        return
    assert not result.ok
    assert result.step is Step.TLS, result.transcript
    assert "not trusted" in str(result.reason)
    assert smtp.messages() == []


def test_a_certificate_for_another_host_fails_at_tls(command, smtp):
    result = command.transport().send(
        make_target(smtp, Mode.SMTPS, port=smtp.wrong_host_port), sent_message(command.key, "x")
    )

    if command.id in UNVERIFIED:
        assert result.verified is False
        return
    assert not result.ok
    assert result.step is Step.TLS, result.transcript
    assert smtp.messages() == []


def test_a_refused_port_fails_at_connect_quickly(command, refused_port):
    target = plain_target(refused_port, timeout=20.0)
    result = command.transport().send(target, sent_message(command.key, "x"))

    assert not result.ok
    assert result.step is Step.CONNECT, result.transcript
    # Far below the timeout: a refused port must not be reported as a hang.
    assert result.duration_s < 10


def test_a_server_that_never_answers_ends_at_the_timeout(command, silent_server):
    target = plain_target(silent_server.port, timeout=4.0)
    result = command.transport().send(target, sent_message(command.key, "x"))

    assert not result.ok
    assert result.step is Step.TIMEOUT, result.transcript
    assert 1.0 <= result.duration_s < 4.0 + 3


def test_starttls_against_an_implicit_tls_port_is_stopped_not_hung(command, smtp):
    target = make_target(smtp, Mode.STARTTLS, port=smtp.smtps_port, timeout=4.0)
    result = command.transport().send(target, sent_message(command.key, "x"))

    assert not result.ok
    assert result.step in (Step.TIMEOUT, Step.TLS, Step.CONNECT), result.transcript
    assert result.duration_s < 4.0 + 3


def test_with_the_check_switched_off_it_sends_but_never_says_verified(command, smtp, mail_test_id):
    target = make_target(smtp, Mode.SMTPS, port=smtp.other_ca_smtps_port, verify=False)
    result = command.transport().send(target, sent_message(command.key, mail_test_id))

    if command.key == "mutt":
        # mutt cannot be told to accept an untrusted chain without a person to ask.
        assert not result.ok and result.step is Step.TLS
        return
    assert result.ok, result.transcript
    assert result.verified is False
    assert any("not verified" in w for w in map(str, result.warnings))
    smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))


def test_transcripts_carry_no_control_characters(command, smtp):
    result = command.transport().send(
        make_target(smtp, Mode.STARTTLS, password="wrong-Passw0rd"), sent_message(command.key, "x")
    )

    assert not any(ord(c) < 32 and c not in "\n\t\r" for c in result.transcript)


@pytest.mark.parametrize("key", ["python3", "curl", "msmtp", "mutt"])
def test_an_untrusted_certificate_suggestion_names_its_issuer(key, smtp):
    from transports.catalogue import transport_for
    from transports.cert_probe import name_issuer

    target = make_target(smtp, Mode.STARTTLS, port=smtp.other_ca_starttls_port)
    result = name_issuer(transport_for(key).send(target, sent_message(key, "x")), target)

    assert not result.ok and result.action == "ca_file", result.transcript
    assert "does not trust CN=xmailadmin other (untrusted) CA" in str(result.suggestion)
    assert smtp.messages() == []
