"""sendmail of a local relay only queues: its exit 0 is never a pass.

With a relay to follow, a pass needs the relay's own word that it delivered
(tests/transports/relay/ runs that against real postfix and exim instances). A stand-in
sendmail feeds no queue that can be followed, so its 0 stays "queued, delivery
not verified"; a relay that is not running gets nothing handed over at all.
"""

from __future__ import annotations

import shutil
import stat

import pytest
from detecting import detect_stand_in, need
from mailcommands import RECIPIENT, SENDER, plain_target

from transports.base import SendResult, Step, Transport
from transports.catalogue import transport_for
from transports.mailx import BsdMailx
from transports.relay import PostfixRelay
from transports.sendmail import PostfixSendmail

MESSAGE = b"From: absender@example.org\nTo: empfaenger@example.net\nSubject: q\n\nbody\n"


def fake_sendmail(tmp_path, exit_code: int, words: str = ""):
    """A stand-in for a relay's sendmail: it records its argv and stdin, then exits."""
    script = tmp_path / "sendmail"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{tmp_path}/argv"\n'
        f'cat > "{tmp_path}/stdin"\n'
        f'[ -n "{words}" ] && echo "{words}" >&2\n'
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def sent(transport: Transport) -> SendResult:
    """MESSAGE through ``transport``, to a plain target on port 25 with a 5 s limit."""
    return transport.send(plain_target(25, timeout=5), MESSAGE)


def unconfigured_postfix(tmp_path) -> PostfixRelay:
    """A postfix relay whose configuration directory does not exist."""
    return PostfixRelay(str(tmp_path / "no-such-postfix"))


@pytest.mark.parametrize("key", ["postfix", "exim"])
def test_a_queued_message_is_not_a_pass(key, tmp_path):
    exe = fake_sendmail(tmp_path, 0)
    result = sent(transport_for(key, exe))

    assert not result.ok
    assert result.step is Step.QUEUE
    assert "delivery not verified" in str(result.reason)
    assert result.reason_code == "queued_unverified"
    assert result.delivered is None
    assert (tmp_path / "stdin").read_bytes() == MESSAGE
    argv = (tmp_path / "argv").read_text().split()
    assert argv == ["-i", "-f", SENDER, "--", RECIPIENT]
    assert "S3cret" not in (tmp_path / "argv").read_text()  # the relay uses its own login


def test_a_refusing_sendmail_fails_at_queue_with_its_words(tmp_path):
    exe = fake_sendmail(tmp_path, 75, "sendmail: fatal: queue file write error")
    result = sent(transport_for("postfix", exe))

    assert not result.ok
    assert result.step is Step.QUEUE
    assert "queue file write error" in str(result.reason)
    assert result.exit_code == 75


@pytest.mark.skipif(
    not shutil.which("postconf"), reason="postfix is not installed (CI installs it)"
)
def test_the_real_postfix_sendmail_is_never_a_pass():
    # Whatever state this machine's postfix is in (unconfigured here), no pass.
    result = transport_for("postfix").send(plain_target(25, timeout=10), MESSAGE)

    assert not result.ok
    assert result.step in (Step.QUEUE, Step.TIMEOUT)
    assert str(result.reason)


def test_bsd_mailx_says_it_needs_a_local_relay():
    result = sent(transport_for("mailx-bsd"))

    assert not result.ok
    assert result.step is Step.UNSUPPORTED
    assert "needs a local sendmail relay" in str(result.reason)


def test_a_command_that_is_not_installed_is_unsupported_not_a_crash():
    result = sent(transport_for("curl", "/nonexistent/curl"))

    assert not result.ok
    assert result.step is Step.UNSUPPORTED
    assert "not installed" in str(result.reason)


def test_nothing_is_handed_to_a_relay_that_is_not_configured(tmp_path):
    relay = unconfigured_postfix(tmp_path)

    result = sent(PostfixSendmail(relay=relay))

    assert not result.ok
    assert result.step is Step.QUEUE
    assert result.reason_code == "relay_not_ready"
    assert "not configured" in str(result.reason)


@pytest.mark.skipif(
    not shutil.which("bsd-mailx"), reason="bsd-mailx is not installed (CI installs it)"
)
def test_bsd_mailx_without_a_ready_relay_says_why(tmp_path):
    relay = unconfigured_postfix(tmp_path)

    result = sent(BsdMailx(relay=relay))

    assert not result.ok
    assert result.step is Step.UNSUPPORTED
    assert result.reason_code == "needs_relay"
    assert "not configured" in str(result.reason)


# --- detection: postfix's TLS is in its smtp daemon, exim's in the one binary -------------


def test_postfix_via_libpostfix_tls(probe):
    need("postconf")
    row = probe["postfix"]
    assert row.found and row.path.endswith("sendmail")
    assert row.version and row.version[0].isdigit()
    assert row.tls_library == "OpenSSL"
    assert row.evidence[:2] == [
        "readelf -d smtp: libpostfix-tls.so (no TLS library of its own)",
        "readelf -d libpostfix-tls.so: libssl.so.3",
    ]
    assert "postfix" in row.note  # configured / running or not: informational


def test_old_exim_stand_in(tmp_path):
    row = detect_stand_in(
        tmp_path,
        "exim",
        "Exim version 4.84_2 #2 built 02-Feb-2016 14:52:13\n"
        "Support for: crypteq iconv() IPv6 GnuTLS move_frozen_messages DKIM PRDR OCSP\n"
        "Library version: GnuTLS: Compile: 3.3.8\n"
        "                         Runtime: 3.3.8",
        name="exim4",
    )
    assert (row.found, row.version, row.tls_library, row.tls_library_version) == (
        True,
        "4.84_2",
        "GnuTLS",
        "3.3.8",
    )
    assert (row.tls12, row.tls13) == ("yes", "no")


def test_exim_that_cannot_start(tmp_path):
    output = 'exim: failed to find uid for user name "Debian-exim"'
    row = detect_stand_in(tmp_path, "exim", output, name="exim4", exit_code=1)
    assert row.found and not row.usable
    assert "Debian-exim" in row.note
