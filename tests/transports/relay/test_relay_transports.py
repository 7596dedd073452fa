"""The mail commands that hand over to a local relay, followed to real delivery:
sendmail of postfix and exim, bsd-mailx, and GNU Mailutils' mail without a URL."""

from __future__ import annotations

import shutil

import pytest
from relaycases import applied, make_message, relay_account, relay_target
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode, SendResult, Step, Transport
from transports.mailx import BsdMailx
from transports.relay import EximRelay, PostfixRelay, RelayAccount, local_relay
from transports.relay.follow import with_message_id
from transports.sendmail import EximSendmail, PostfixSendmail


def sent(transport: Transport, account: RelayAccount, test_id: str, command: str) -> SendResult:
    """The test message through ``transport``, which hands it to its relay."""
    return transport.send(relay_target(account), make_message(test_id, command))


def test_postfix_sendmail_passes_once_the_relay_delivered(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.SMTPS)

    result = sent(PostfixSendmail(relay=postfix.relay), account, mail_test_id, "postfix")

    assert result.ok, str(result.reason)
    assert result.command == "postfix" and result.delivered is True
    assert result.tls_version == "TLSv1.3"
    smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))


def test_postfix_sendmail_with_a_wrong_relay_password_is_never_a_pass(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.STARTTLS, password="wrong-one")

    result = sent(PostfixSendmail(relay=postfix.relay), account, mail_test_id, "postfix")

    assert not result.ok and result.step is Step.AUTH
    assert "535" in str(result.reason)
    assert result.reason_code == "auth"


def test_postfix_sendmail_says_so_when_postfix_does_not_run(postfix, smtp, mail_test_id):
    account = applied(postfix, smtp, Mode.SMTPS)
    postfix.stop()

    result = sent(PostfixSendmail(relay=postfix.relay), account, mail_test_id, "postfix")

    assert not result.ok and result.step is Step.QUEUE
    assert result.reason_code == "relay_not_ready"


def test_a_delivery_to_another_server_than_the_account_is_a_pass_with_a_warning(
    postfix, smtp, mail_test_id
):
    applied(postfix, smtp, Mode.SMTPS)  # the account the relay forwards to
    other = relay_account(smtp, Mode.STARTTLS, postfix.ca_file)  # what the panel tests

    result = sent(PostfixSendmail(relay=postfix.relay), other, mail_test_id, "postfix")

    assert result.ok
    assert any("not to the account's server" in w for w in map(str, result.warnings))


def test_exim_sendmail_passes_once_the_relay_delivered(exim, smtp, mail_test_id):
    account = applied(exim, smtp, Mode.STARTTLS)

    result = sent(EximSendmail(relay=exim.relay), account, mail_test_id, "exim")

    assert result.ok, str(result.reason)
    assert result.command == "exim" and result.delivered is True
    smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))


def _require(binary: str) -> None:
    if not shutil.which(binary):
        pytest.skip(f"{binary} is not installed (scripts/setup.sh test installs it)")


def test_bsd_mailx_passes_through_a_relay_that_delivered(postfix, smtp, mail_test_id):
    _require("bsd-mailx")
    account = applied(postfix, smtp, Mode.SMTPS)

    result = sent(BsdMailx(relay=postfix.relay), account, mail_test_id, "mailx-bsd")

    assert result.ok, str(result.reason)
    assert result.delivered is True
    received = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert "mailx-bsd" in received.message["Subject"]
    assert received.message.get_content_type() == "text/plain"
    assert "Testmail" in received.message.get_content()


def test_bsd_mailx_fails_with_the_relays_reason(postfix, smtp, refused_port, mail_test_id):
    _require("bsd-mailx")
    account = applied(postfix, smtp, Mode.STARTTLS, port=refused_port)

    result = sent(BsdMailx(relay=postfix.relay), account, mail_test_id, "mailx-bsd")

    assert not result.ok and result.step is Step.CONNECT


def test_bsd_mailx_cannot_reach_a_private_exim(exim, smtp, mail_test_id):
    _require("bsd-mailx")
    account = applied(exim, smtp, Mode.SMTPS)

    result = sent(BsdMailx(relay=exim.relay), account, mail_test_id, "mailx-bsd")

    assert not result.ok and result.step is Step.UNSUPPORTED
    assert "needs a local sendmail relay" in str(result.reason)


def test_mailutils_handing_over_to_the_local_sendmail_is_followed(postfix, smtp, mail_test_id):
    # GNU Mailutils without an SMTP URL calls sendmail; the relay follows the message.
    _require("mail.mailutils")
    account = applied(postfix, smtp, Mode.STARTTLS)
    target = relay_target(account)
    message, message_id = with_message_id(make_message(mail_test_id, "mailutils"), target.sender)
    argv = [
        shutil.which("mail.mailutils"), "--no-config",
        "-E", f"set sendmail=sendmail://{postfix.relay.plain_sendmail()}",
        "-E", "set nodot", "-r", target.sender, "-t",
    ]  # fmt: skip

    result = postfix.relay.hand_over(
        argv,
        stdin=message,
        env={"HOME": str(postfix.base), **postfix.relay.handover_env()},
        target=target,
        message_id=message_id,
    )

    assert result.ok, str(result.reason)
    smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))


def test_the_relay_behind_the_local_sendmail_is_found(exim_binary, tmp_path):
    link = tmp_path / "sendmail"
    link.symlink_to(exim_binary)  # Debian's exim4 makes /usr/sbin/sendmail such a link

    found = local_relay(str(link))

    assert isinstance(found, EximRelay) and found.binary == exim_binary
    if shutil.which("postconf"):
        assert isinstance(local_relay(), PostfixRelay)  # postfix's own /usr/sbin/sendmail
