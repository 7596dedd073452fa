"""The SMTP password never shows: not in argv or environment of any process, not in
a transcript, not in a reason; and passwords full of special characters still work."""

from __future__ import annotations

from pathlib import Path

import pytest
from mailcommands import RECIPIENT, SENDER, make_target, plain_target
from process_watch import ProcessWatcher
from smtp_server import TEST_ID_HEADER, SmtpTestServer, header_is

from transports.base import Mode
from transports.message import build_test_message
from transports.secrecy import MASK, redact, secret_forms

TRICKY = "pä$s w'o\"r\\d;|&`x`!"  # quotes, space, shell characters, a backslash, non-ASCII
# Heirloom's rc syntax has no escapes: one kind of quote at most (see the test below).
TRICKY_HEIRLOOM = TRICKY.replace('"', "")


@pytest.fixture
def tricky_server(pki, tmp_path, command):
    password = TRICKY_HEIRLOOM if command.key == "mailx-heirloom" else TRICKY
    with SmtpTestServer(pki, tmp_path, password=password) as server:
        yield server


def send_watched(command, target, message):
    with ProcessWatcher(target.password) as watcher:
        return command.transport().send(target, message), watcher


def test_the_password_is_in_no_argv_or_environment_while_the_command_waits(command, silent_server):
    # The silent server keeps the command alive for seconds, so the watcher surely sees it.
    target = plain_target(silent_server.port, timeout=2.0)
    result, watcher = send_watched(
        command, target, build_test_message(sender=SENDER, recipient=RECIPIENT, command=command.key)
    )

    assert watcher.leaks == []
    expected = Path(command.executable or command.transport().which() or "").name
    assert any(expected.startswith(seen) or seen.startswith(expected) for seen in watcher.seen), (
        f"the watcher never saw {expected}: {sorted(watcher.seen)[:30]}"
    )
    assert target.password not in result.transcript


def test_a_password_full_of_special_characters_works_and_never_shows(
    command, tricky_server, mail_test_id
):
    message = build_test_message(
        sender=SENDER, recipient=RECIPIENT, command=command.key, test_id=mail_test_id
    )
    target = make_target(tricky_server, Mode.STARTTLS)
    result, watcher = send_watched(command, target, message)

    assert result.ok, result.transcript
    tricky_server.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert watcher.leaks == []
    for form in secret_forms(target.user, target.password):
        assert form not in result.transcript
        assert form not in str(result.reason) + result.detail


def test_a_wrong_password_is_not_shown_either(command, smtp):
    wrong = "Wr0ng-but-secret"
    target = make_target(smtp, Mode.SMTPS, password=wrong)
    result = command.transport().send(
        target, build_test_message(sender=SENDER, recipient=RECIPIENT, command=command.key)
    )

    assert not result.ok
    for form in secret_forms(target.user, wrong):
        assert form not in result.transcript + str(result.reason) + result.detail


def test_heirloom_says_clearly_why_it_cannot_take_both_quotes(smtp):
    from transports.catalogue import transport_for

    result = transport_for("mailx-heirloom", "s-nail").send(
        make_target(smtp, Mode.STARTTLS, password="a'b\"c"), b"Subject: x\n\nx\n"
    )
    assert not result.ok
    assert result.step.value == "config"
    assert "both" in str(result.reason)


def test_redact_masks_every_spelling_of_the_password():
    text = "AUTH PLAIN AHRlc3RlcgBzM2NyM3Q=\n334 VXNlcm5hbWU6\n> dGVzdGVy\npw=s3cr3t url=s3cr3t"
    cleaned = redact(text, "tester", "s3cr3t")
    assert "s3cr3t" not in cleaned
    assert "AHRlc3RlcgBzM2NyM3Q=" not in cleaned
    assert MASK in cleaned


def test_redaction_masks_the_auth_argument_but_not_the_mechanism_list():
    from transports.secrecy import MASK, redact

    text = (
        "<<< 250-AUTH LOGIN PLAIN\n>>> AUTH PLAIN AHVzZXIAcHc=\n"
        "s-nail: >>> AUTH PLAIN\ns-nail: >>> SERVER: 334 \n"
    )
    out = redact(text, "user", "pw-that-is-not-here")
    assert "250-AUTH LOGIN PLAIN" in out
    assert f"AUTH PLAIN {MASK}" in out and "AHVzZXIAcHc=" not in out
    assert "s-nail: >>> SERVER: 334" in out
