"""The relay package's plain parts: accounts, merging files, reading logs, the verdict."""

from __future__ import annotations

import pytest

from transports.base import Mode, Step, Target, TargetError
from transports.relay import ConfigFile, RelayAccount
from transports.relay.exim_log import EximFollower
from transports.relay.files import BLOCK_BEGIN, merged
from transports.relay.follow import (
    FINAL,
    LogTail,
    QueueState,
    Tracking,
    result_of,
    with_message_id,
)
from transports.relay.postfix_log import PostfixFollower

TARGET = Target(
    host="mail.example.org",
    port=587,
    user="tester",
    password="S3cret-pw",
    sender="absender@example.org",
    recipient="empfaenger@example.net",
)


def account(**overrides) -> RelayAccount:
    values = {"host": "mail.example.org", "port": 587, "user": "tester", "password": "pw"}
    return RelayAccount(**{**values, **overrides})


def test_the_mode_follows_the_port_unless_given():
    assert account(port=465).mode is Mode.SMTPS
    assert account(port=587).mode is Mode.STARTTLS
    assert account(port=465, mode="starttls").mode_mismatch


@pytest.mark.parametrize(
    "overrides",
    [
        {"user": "te:ster"},
        {"user": "te ster"},
        {"password": " padded"},
        {"password": "line\nbreak"},
        {"ca_file": "relative/ca.pem"},
        {"ca_file": "/path with blank/ca.pem"},
        {"tls_name": "127.0.0.1"},
        {"port": 0},
        {"host": "bad host"},
    ],
)
def test_an_account_the_relay_files_cannot_hold_is_refused(overrides):
    with pytest.raises(TargetError):
        account(**overrides)


def test_the_certificate_name_is_the_host_or_tls_name():
    assert account().certificate_name == "mail.example.org"
    assert account(host="192.0.2.1").certificate_name is None
    assert account(host="192.0.2.1", tls_name="Mail.Example.ORG").certificate_name == (
        "mail.example.org"
    )


def test_lines_merge_replaces_our_key_and_keeps_the_rest():
    ours = ConfigFile("/x", "[a]:587 new:pw\n")
    existing = "# comment\n[a]:587 old:pw\n[b]:25 other:pw\n"

    assert merged(existing, ours) == "# comment\n[b]:25 other:pw\n[a]:587 new:pw\n"


def test_colon_lines_merge_is_keyed_by_the_host():
    ours = ConfigFile("/x", "a.example:new:pw\n", merge="colon-lines")

    assert merged("a.example:old:pw\nb:x:y\n", ours) == "b:x:y\na.example:new:pw\n"


def test_a_block_merge_replaces_only_our_block_and_is_idempotent():
    ours = ConfigFile("/x", "A = 1\n", merge="block")
    once = merged("OWN = 2\n", ours)
    twice = merged(once, ConfigFile("/x", "B = 3\n", merge="block"))

    assert once.startswith(BLOCK_BEGIN) and "OWN = 2" in once
    assert "A = 1" not in twice and "B = 3" in twice and twice.count(BLOCK_BEGIN) == 1


def test_an_assignments_merge_replaces_values_and_adds_new_names():
    ours = ConfigFile("/x", "dc_smarthost='h::587'\ndc_new='1'\n", merge="assignments")

    result = merged("# dc_smarthost='comment'\ndc_smarthost=''\nother='x'\n", ours)

    assert result == ("# dc_smarthost='comment'\ndc_smarthost='h::587'\nother='x'\ndc_new='1'\n")


def test_the_generated_text_masks_the_password():
    config = ConfigFile("/etc/postfix/sasl_passwd", "[h]:587 u:S3cret\n", 0o600, secret=True)

    assert config.shown("S3cret") == "[h]:587 u:********\n"


def test_a_message_without_message_id_gets_one_in_its_header():
    message, message_id = with_message_id(b"Subject: x\n\nbody\n", "a@example.org")

    assert message.startswith(f"Message-ID: {message_id}\n".encode())
    assert message_id.endswith("@example.org>")
    assert with_message_id(message, "a@example.org") == (message, message_id)


def test_a_log_tail_reads_only_new_lines_and_survives_rotation(tmp_path):
    log = tmp_path / "maillog"
    log.write_text("old line\n")
    tail = LogTail(str(log))
    with log.open("a") as fh:
        fh.write("new line\npartial")

    assert tail.lines() == ["new line"]
    log.unlink()
    log.write_text("after rotation\n")
    assert tail.lines() == ["after rotation"]


@pytest.mark.parametrize("state", sorted(QueueState, key=str))
def test_only_a_delivery_is_a_pass(state):
    tracking = Tracking("<id@x>", queue_id="Q1", state=state, reason="whatever")

    result = result_of(tracking, TARGET, "postfix", 3.0)

    assert result.ok is (state is QueueState.DELIVERED)
    assert (result.delivered is True) is (state is QueueState.DELIVERED)


def _postfix_reads(*lines: str) -> Tracking:
    follower = PostfixFollower(None, [], [], TARGET)
    tracking = Tracking("<t1@example.org>")
    for line in lines:
        follower._read(line, tracking)
    return tracking


def test_postfix_remembered_failure_is_read_as_deferred_with_its_reason():
    # qmgr, not smtp, answers while it remembers the last failure of that relay.
    tracking = _postfix_reads(
        "Nov 28 07:29:11 h postfix/cleanup[1]: 7B5D3: message-id=<t1@example.org>",
        "Nov 28 07:29:11 h postfix/qmgr[2]: 7B5D3: to=<b@example.net>, relay=none, "
        "delay=0.1, delays=0/0/0/0, dsn=4.7.8, status=deferred (delivery temporarily "
        "suspended: SASL authentication failed; server x said: 535 5.7.8 invalid)",
    )

    assert tracking.state is QueueState.DEFERRED
    assert result_of(tracking, TARGET, "postfix", 1).step is Step.AUTH


def test_postfix_tls_is_taken_from_the_same_smtp_process():
    tracking = _postfix_reads(
        "Nov 28 07:25:22 h postfix/cleanup[1]: E06A9: message-id=<t1@example.org>",
        "Nov 28 07:25:22 h postfix/smtp[7]: Untrusted TLS connection established to "
        "x[127.0.0.1]:25: TLSv1.2 with cipher X",
        "Nov 28 07:25:22 h postfix/smtp[8]: Verified TLS connection established to "
        "x[127.0.0.1]:465: TLSv1.3 with cipher Y",
        "Nov 28 07:25:23 h postfix/smtp[8]: E06A9: to=<b@example.net>, "
        "relay=mail.example.org[127.0.0.1]:587, delay=0.16, delays=0.04/0.02/0.09/0, "
        "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1)",
    )

    result = result_of(tracking, TARGET, "postfix", 1)
    assert result.ok and result.tls_version == "TLSv1.3" and result.verified
    assert not result.warnings


def test_exim_auth_failure_before_a_bounce_is_the_reason():
    follower = EximFollower(None, [])
    tracking = Tracking("<t1@example.org>")
    for line in (
        "2026-11-28 07:29:53 1xXCsb-0004wL-0J <= a@example.org U=root P=local S=309 "
        "id=t1@example.org",
        "2026-11-28 07:29:53 1xXCsb-0004wL-0J plain authenticator failed "
        "H=127.0.0.1 [127.0.0.1] 535 5.7.8 Authentication credentials invalid",
        "2026-11-28 07:29:53 1xXCsb-0004wL-0J ** b@example.net R=smarthost T=t H=127.0.0.1 "
        '[127.0.0.1] X=TLS1.3:ECDHE:256 CV=yes DN="CN=localhost": SMTP error from remote '
        "mail server after MAIL FROM:<a@example.org> SIZE=1345: 530 5.7.0 Authentication required",
        "2026-11-28 07:29:53 1xXCsb-0004wa-0l <= <> R=1xXCsb-0004wL-0J U=Debian-exim P=local",
    ):
        follower._read(line, tracking)

    assert tracking.state is QueueState.BOUNCED and tracking.state in FINAL
    assert tracking.children == ["1xXCsb-0004wa-0l"]
    result = result_of(tracking, TARGET, "exim", 1)
    assert result.step is Step.AUTH and "535" in str(result.reason) and "530" in str(result.reason)


@pytest.mark.parametrize("logged_in", [True, False])
def test_an_exim_delivery_passes_only_when_it_logged_in(logged_in):
    follower = EximFollower(None, [])
    tracking = Tracking("<t1@example.org>")
    login = " A=plain" if logged_in else ""
    for line in (
        "2026-11-28 07:29:53 1xXCsb-0004wL-0J <= a@example.org U=root P=local S=309 "
        "id=t1@example.org",
        "2026-11-28 07:29:53 1xXCsb-0004wL-0J => b@example.net R=smarthost T=t H=127.0.0.1 "
        f'[127.0.0.1] X=TLS1.3:ECDHE:256 CV=yes DN="CN=localhost"{login} C="250 Ok"',
    ):
        follower._read(line, tracking)

    result = result_of(tracking, TARGET, "exim", 1)

    assert tracking.state is QueueState.DELIVERED and result.delivered is True
    assert result.ok is logged_in
    if not logged_in:
        assert result.reason_code == "relay_not_authenticated" and result.step is Step.AUTH
