"""The outbox delivers through the preferred order, judged by what the server saw:
fallback past a command that fails, no fallback on a 5xx at RCPT (bounced, the sender
told), a 4xx retried on the schedule, every attempt recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone, translation
from outbox_helpers import ENTRY, message, sendmail, use_order

from outbox import spool, store
from xmailadmin import delivery
from xmailadmin.models import DeliveryAttempt, Outbox, OutboxMessage

pytestmark = pytest.mark.django_db


def submit(outbox, subject: str, *args: str, to: str = "rcpt@example.net") -> str:
    result = sendmail(outbox, "-f", "app@example.org", *args, to, stdin=message(subject, to))
    assert result.returncode == 0, result.stderr
    [spool_id] = [p.name for p in (outbox / "new").iterdir()]
    return spool_id


def test_a_message_is_delivered_through_the_first_command(outbox, account, smtp):
    use_order("python3", "curl")
    spool_id = submit(outbox, "Erste Zustellung")

    summary = delivery.run(outbox)

    got = smtp.wait_for(lambda r: "Erste Zustellung" in r.raw.decode())
    assert got.rcpt_tos == ["rcpt@example.net"]
    assert got.mail_from == account.sender  # the account's address: the server allows it
    assert got.auth_user == smtp.user and got.tls_version in ("TLSv1.2", "TLSv1.3")
    assert "Grüße aus dem Outbox-Test" in got.raw.decode()
    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert summary.delivered == 1 and row.state == Outbox.DELIVERED
    assert row.delivered_by == "python3" and row.pending == []
    assert row.message_id and row.message_id in got.raw.decode()  # added, and kept
    [attempt] = row.tries.all()
    assert attempt.ok and attempt.command == "python3" and attempt.tls_version == got.tls_version
    assert not (outbox / "cur" / spool_id).exists()  # delivered: the file is gone
    assert '"delivered"' in Path(spool.status_path(outbox, spool_id)).read_text()


def test_a_missing_command_falls_back_to_the_next(outbox, account, smtp):
    use_order("snail15", "msmtp")  # s-nail 15 is not released: never on a server
    spool_id = submit(outbox, "Rückfall")

    delivery.run(outbox)

    smtp.wait_for(lambda r: "Rückfall" in r.raw.decode())
    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert row.state == Outbox.DELIVERED and row.delivered_by == "msmtp"
    first, second = row.tries.all()
    assert (first.command, first.ok, first.reason_code) == ("snail15", False, "not_installed")
    assert (second.command, second.ok) == ("msmtp", True)


def test_a_550_at_rcpt_bounces_after_one_attempt_and_tells_the_sender(outbox, account, refusing):
    refusing.refused_recipients["gone@example.net"] = (
        "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown"
    )
    use_order("curl", "python3", "msmtp")
    spool_id = submit(outbox, "Unzustellbar", to="gone@example.net")

    delivery.run(outbox)

    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert row.state == Outbox.BOUNCED and row.bounced_to == ["gone@example.net"]
    [attempt] = row.tries.all()  # no other command: it would hear the same
    assert attempt.command == "curl" and attempt.permanent and attempt.step == "rcpt_to"
    assert "550" in row.reason and "User unknown" in row.reason
    assert (outbox / "done" / spool_id).exists()  # kept for a retry after a fix

    delivery.run(outbox)  # the notice, like any message, through the outbox
    notice = refusing.wait_for(lambda r: r.rcpt_tos == ["app@example.org"])
    text = notice.message.get_content()
    assert "gone@example.net" in text and "User unknown" in text
    assert notice.message["Auto-Submitted"] == "auto-replied"
    assert OutboxMessage.objects.get(kind="bounce").state == Outbox.DELIVERED


def test_a_450_waits_on_the_schedule_and_is_delivered_once_the_server_takes_it(
    outbox, account, refusing, settings
):
    settings.XMAILADMIN_OUTBOX_MIN_BACKOFF = 300
    refusing.refused_recipients["later@example.net"] = (
        "450 4.2.0 <later@example.net>: Recipient address rejected: greylisted"
    )
    use_order("python3", "curl")
    spool_id = submit(outbox, "Später", to="later@example.net")

    delivery.run(outbox)

    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert row.state == Outbox.WAITING and row.attempts == 1
    assert [t.command for t in row.tries.all()] == ["python3", "curl"]  # 4xx: next command
    wait = (row.next_try_at - row.tries.last().at).total_seconds()
    assert 290 < wait < 310  # postfix's first backoff
    assert delivery.run(outbox).delivered == 0  # not due yet: nothing tried
    assert row.tries.count() == 2

    refusing.refused_recipients.clear()
    assert delivery.retry(row)
    delivery.run(outbox)

    row.refresh_from_db()
    assert row.state == Outbox.DELIVERED and row.attempts == 2
    assert len(refusing.find("Subject", "Später")) == 1


def test_recipients_are_done_one_by_one_and_none_twice(outbox, account, refusing):
    refusing.refused_recipients["gone@example.net"] = "550 5.1.1 <gone@example.net>: unknown"
    use_order("python3")
    result = sendmail(
        outbox, "-f", "app@example.org", "a@example.net", "gone@example.net",
        stdin=message("Zwei Empfänger", "a@example.net"),
    )  # fmt: skip
    assert result.returncode == 0

    delivery.run(outbox)
    delivery.run(outbox)

    row = OutboxMessage.objects.get(kind="message")
    assert row.state == Outbox.BOUNCED and row.bounced_to == ["gone@example.net"]
    got = [m.rcpt_tos for m in refusing.messages() if "Zwei Empf" in m.raw.decode()]
    assert sorted(got) == [["a@example.net"], ["app@example.org"]]  # once, and the notice


def test_without_an_account_the_message_waits_and_says_why(outbox, db):
    spool_id = submit(outbox, "Kein Konto")

    delivery.run(outbox)

    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert row.state == Outbox.WAITING and "no SMTP account" in row.reason
    assert DeliveryAttempt.objects.filter(message=row, step="config").count() == 1
    assert (outbox / "cur" / spool_id).exists()


def test_a_message_still_refused_when_its_lifetime_ends_is_bounced(outbox, account, refusing):
    refusing.refused_recipients["later@example.net"] = "450 4.2.0 <later@example.net>: try later"
    use_order("python3")
    spool_id = submit(outbox, "Zu spät", to="later@example.net")
    delivery.run(outbox)
    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert row.state == Outbox.WAITING
    five_days = timezone.now() - timedelta(days=5, seconds=1)
    OutboxMessage.objects.filter(pk=row.pk).update(submitted_at=five_days)

    assert delivery.retry(row)
    delivery.run(outbox)

    row.refresh_from_db()
    assert row.state == Outbox.BOUNCED and row.bounced_to == ["later@example.net"]
    with translation.override("de"):
        assert row.explanation.startswith("Nicht innerhalb von 120 Stunden zugestellt")
        assert "450 4.2.0" in row.explanation


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 300), (2, 600), (4, 2400), (5, 4000),
                                                   (30, 4000)])  # fmt: skip
def test_the_retry_schedule_is_postfixs(attempts, seconds):
    assert delivery.backoff(attempts).total_seconds() == seconds


def test_many_messages_at_once_each_arrive_once_with_their_fallback(outbox, account, smtp):
    # Several mail commands run at once (XMAILADMIN_OUTBOX_CONCURRENCY): each message is
    # still tried in the order, recorded attempt by attempt, and sent exactly once.
    use_order("snail15", "msmtp")
    subjects = [f"Gleichzeitig {i}" for i in range(8)]
    for subject in subjects:
        result = sendmail(outbox, "-f", "app@example.org", "rcpt@example.net",
                          stdin=message(subject))  # fmt: skip
        assert result.returncode == 0, result.stderr

    summary = delivery.run(outbox)

    assert summary.delivered == 8
    smtp.wait_for(8)
    for subject in subjects:
        assert len(smtp.find("Subject", subject)) == 1, subject
    for row in OutboxMessage.objects.all():
        assert row.state == Outbox.DELIVERED and row.delivered_by == "msmtp"
        assert [(t.command, t.ok) for t in row.tries.all()] == [("snail15", False), ("msmtp", True)]


def test_an_international_domain_goes_out_in_its_ascii_form(outbox, account, smtp):
    use_order("curl")
    submit(outbox, "Umlaut-Domain", to="info@straße-bücher.de")

    delivery.run(outbox)

    got = smtp.wait_for(lambda r: "Umlaut-Domain" in r.raw.decode())
    assert got.rcpt_tos == ["info@xn--strae-bcher-y6a49a.de"]  # IDNA 2008: ß stays
    assert "straße-bücher.de".encode("idna") != b"xn--strae-bcher-y6a49a.de"  # 2003: ss
    row = OutboxMessage.objects.get()
    assert row.state == Outbox.DELIVERED and row.recipients == ["info@straße-bücher.de"]
    assert [t.recipient for t in row.tries.all()] == ["info@straße-bücher.de"]


def test_a_mailbox_name_beyond_ascii_bounces_with_the_reason(outbox, account, smtp):
    use_order("curl")
    submit(outbox, "Umlaut-Postfach", to="jürgen@example.net")

    delivery.run(outbox)

    row = OutboxMessage.objects.get(kind="message")
    assert row.state == Outbox.BOUNCED and row.bounced_to == ["jürgen@example.net"]
    assert "needs SMTPUTF8" in row.reason
    assert [(t.command, t.permanent) for t in row.tries.all()] == [("", True)]  # no command
    assert smtp.find("Subject", "Umlaut-Postfach") == []


def killed_while_writing(outbox: Path, data: bytes) -> bool:
    """xmail-sendmail given ``data``, and SIGKILL as soon as its file is in tmp/; False
    when it was quicker than that (its message is then removed again)."""
    proc = subprocess.Popen(
        [sys.executable, str(ENTRY), "-f", "app@example.org", "-i", "rcpt@example.net"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "XMAILADMIN_OUTBOX": str(outbox)},
    )  # fmt: skip
    proc.stdin.write(data)
    proc.stdin.close()
    deadline = time.monotonic() + 30
    while not any((outbox / "tmp").iterdir()) and proc.poll() is None:
        assert time.monotonic() < deadline, "xmail-sendmail never started writing"
    proc.kill()
    proc.wait()
    if proc.returncode == -9 and any((outbox / "tmp").iterdir()):
        return True
    for path in (outbox / "new").iterdir():
        path.unlink()
    return False


def test_xmail_sendmail_killed_mid_write_leaves_nothing_to_send(outbox, account, smtp):
    use_order("curl")
    big = message("Halb geschrieben") + b"x" * (24 * 1024 * 1024) + b"\n"
    # Writing and syncing 24 MB takes long enough to be caught; a quicker run is tried again.
    assert any(killed_while_writing(outbox, big) for _ in range(5))
    [half] = (outbox / "tmp").iterdir()
    assert list((outbox / "new").iterdir()) == []  # only a rename makes a message

    assert delivery.run(outbox).taken == 0
    assert not OutboxMessage.objects.exists() and smtp.messages() == []
    old = time.time() - store.STALE_TMP_S - 1
    os.utime(half, (old, old))
    delivery.run(outbox)
    assert list((outbox / "tmp").iterdir()) == []  # swept as Maildir does, after 36 h


# A curl whose TLS library cannot speak TLS 1.2 answers as curl does (exit 35), and one
# whose binary is broken dies of a signal: both are failures of the way, not of the
# message, so the next command delivers.
BROKEN_CURLS = {
    "wrong-tls": "echo 'curl: (35) error:0A00042E:SSL routines::tlsv1 alert protocol version' >&2\n"
    "exit 35\n",
    "broken-binary": "kill -SEGV $$\n",
}


@pytest.mark.parametrize("fault", BROKEN_CURLS)
def test_a_first_command_that_fails_falls_back_to_the_next(
    outbox, account, smtp, tmp_path, monkeypatch, fault
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text("#!/bin/sh\n" + BROKEN_CURLS[fault])
    (bin_dir / "curl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    use_order("curl", "python3")
    spool_id = submit(outbox, f"Rückfall {fault}")

    delivery.run(outbox)

    got = smtp.wait_for(lambda r: f"Rückfall {fault}" in r.raw.decode())
    assert got.rcpt_tos == ["rcpt@example.net"]
    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert row.state == Outbox.DELIVERED and row.delivered_by == "python3"
    first, second = row.tries.all()
    assert (first.command, first.ok, first.permanent) == ("curl", False, False)
    assert first.step == {"wrong-tls": "tls", "broken-binary": "unknown"}[fault], first.reason
    said = {"wrong-tls": "no TLS version in common", "broken-binary": "crashed (signal SIGSEGV)"}
    assert said[fault] in first.reason
    assert second.ok
