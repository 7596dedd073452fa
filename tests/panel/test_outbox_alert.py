"""When no mail command could deliver for longer than the warning age, the first
delivery afterwards mails the admin address, once, through the order that works again;
judged by what the server received."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone
from outbox_helpers import message, sendmail, use_order

from outbox import spool
from xmailadmin import delivery
from xmailadmin.models import AuditEntry, Outbox, OutboxMessage

pytestmark = pytest.mark.django_db
ADMIN = "admin@example.org"


def submit(folder, subject: str, to: str = "rcpt@example.net") -> None:
    result = sendmail(folder, "-f", "app@example.org", to, stdin=message(subject, to))
    assert result.returncode == 0, result.stderr


def waited(minutes: int) -> None:
    """Every message as if submitted that long ago (the warning age is 30 minutes)."""
    then = timezone.now() - timedelta(minutes=minutes)
    OutboxMessage.objects.update(submitted_at=then)


def outage_then_recovery(outbox, *subjects: str) -> None:
    use_order("snail15")  # not installed on any server: no way to deliver
    for subject in subjects:
        submit(outbox, subject)
    delivery.run(outbox)
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {Outbox.WAITING}
    waited(45)
    use_order("msmtp")
    for row in OutboxMessage.objects.all():
        assert delivery.retry(row)


def alerts(smtp):
    return [m for m in smtp.messages() if ADMIN in m.rcpt_tos]


def test_the_first_delivery_after_an_outage_mails_the_admin_once(outbox, account, smtp):
    spool.write_admin_address(outbox, ADMIN)
    outage_then_recovery(outbox, "Nach der Störung 1", "Nach der Störung 2")

    delivery.run(outbox)  # delivers both, then the alert it wrote, in the same run

    assert len(smtp.find("Subject", "Nach der Störung 1")) == 1
    assert len(smtp.find("Subject", "Nach der Störung 2")) == 1
    alert = smtp.wait_for(lambda m: ADMIN in m.rcpt_tos)
    assert len(alerts(smtp)) == 1
    mail = message_from_bytes(alert.raw, policy=policy.default)
    text = f"Subject: {mail['Subject']}\n{mail.get_body().get_content()}"
    assert alert.mail_from == account.sender
    assert "Subject: E-Mail funktioniert wieder auf" in text
    assert "stellt wieder zu, über msmtp." in text and "45 Minuten warten" in text
    # what failed before
    assert "kein Mail-Befehl zustellen: s-nail (Version 15.x)" in text
    assert "nicht installiert" in text
    assert mail["Auto-Submitted"] == "auto-generated"  # RFC 3834: nobody answers it
    row = OutboxMessage.objects.get(kind="alert")
    assert row.state == Outbox.DELIVERED and row.recipients == [ADMIN]
    [entry] = AuditEntry.objects.filter(action=AuditEntry.Action.OUTBOX_ALERT)
    assert entry.target == row.spool_id and entry.detail.endswith(f"to {ADMIN}")

    submit(outbox, "Danach, ganz normal")
    delivery.run(outbox)
    assert len(alerts(smtp)) == 1  # no outage, no alert


def test_a_message_refused_for_a_while_is_no_outage(outbox, account, refusing):
    spool.write_admin_address(outbox, ADMIN)
    use_order("msmtp")
    refusing.refused_recipients["later@example.net"] = "451 4.3.0 <later@example.net>: busy"
    submit(outbox, "Nur dieser Empfänger wartet", to="later@example.net")
    delivery.run(outbox)
    waited(45)
    refusing.refused_recipients.clear()
    [row] = OutboxMessage.objects.all()
    assert delivery.retry(row)

    delivery.run(outbox)

    assert OutboxMessage.objects.get(pk=row.pk).state == Outbox.DELIVERED
    assert alerts(refusing) == []  # the way worked all along: the server said "later"
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.OUTBOX_ALERT).exists()


def test_without_an_admin_address_the_recovery_is_still_recorded(outbox, account, smtp):
    outage_then_recovery(outbox, "Niemand zu benachrichtigen")

    delivery.run(outbox)

    assert len(smtp.find("Subject", "Niemand zu benachrichtigen")) == 1
    [entry] = AuditEntry.objects.filter(action=AuditEntry.Action.OUTBOX_ALERT)
    assert "through msmtp, after 45 minutes" in entry.detail
    assert entry.detail.endswith("no admin address is set, no alert mail")
    assert not OutboxMessage.objects.filter(kind="alert").exists()
