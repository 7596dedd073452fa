"""manage.py outbox over SSH: list, retry, discard and deliver, judged by what the
server received, with the same audit entries as the outbox page."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from outbox_helpers import message, sendmail, use_order

from xmailadmin.models import AuditEntry, Outbox, OutboxMessage

pytestmark = pytest.mark.django_db


def outbox_cmd(*args: str) -> str:
    out = StringIO()
    call_command("outbox", *args, stdout=out)
    return out.getvalue()


def submit(folder, subject: str, to: str = "rcpt@example.net") -> None:
    result = sendmail(folder, "-f", "app@example.org", to, stdin=message(subject, to))
    assert result.returncode == 0, result.stderr


def test_deliver_then_list_shows_what_waits_and_why(outbox, account, refusing):
    use_order("python3")
    refusing.refused_recipients["later@example.net"] = "451 4.3.0 <later@example.net>: busy"
    submit(outbox, "Über SSH zugestellt")
    submit(outbox, "Wartet noch", to="later@example.net")

    said = outbox_cmd("deliver")

    assert said.strip() == "taken 2, delivered 1, waiting 1, bounced 0"
    refusing.wait_for(lambda r: "Über SSH zugestellt" in r.raw.decode())
    [waiting] = json.loads(outbox_cmd("list", "--json"))
    assert (waiting["state"], waiting["recipients"]) == ("waiting", ["later@example.net"])
    assert "451 4.3.0" in waiting["reason"] and waiting["attempts"] == 1
    assert len(json.loads(outbox_cmd("list", "--json", "--all"))) == 2
    assert "later@example.net" in outbox_cmd("list") and "Über SSH" not in outbox_cmd("list")


def test_retry_and_discard_are_audited_as_on_the_page(outbox, account, refusing):
    use_order("python3")
    refusing.refused_recipients["later@example.net"] = "451 4.3.0 <later@example.net>: busy"
    submit(outbox, "Noch einmal", to="later@example.net")
    submit(outbox, "Weg damit", to="later@example.net")
    outbox_cmd("deliver")
    again, gone = OutboxMessage.objects.order_by("id")
    refusing.refused_recipients.clear()

    assert outbox_cmd("retry", str(again.pk)).strip() == "1 message(s) due now"
    assert outbox_cmd("discard", str(gone.pk)).strip() == f"message {gone.pk} discarded"
    outbox_cmd("deliver")

    assert len(refusing.find("Subject", "Noch einmal")) == 1
    assert refusing.find("Subject", "Weg damit") == []
    assert OutboxMessage.objects.get(pk=gone.pk).state == Outbox.DISCARDED
    retried = AuditEntry.objects.get(action=AuditEntry.Action.OUTBOX_RETRY)
    discarded = AuditEntry.objects.get(action=AuditEntry.Action.OUTBOX_DISCARD)
    assert (retried.target, retried.username) == (again.spool_id, "system")
    assert (
        retried.detail
        == "app@example.org → later@example.net · Noch einmal (manage.py outbox retry)"
    )
    assert discarded.target == gone.spool_id and discarded.detail.endswith(
        "(manage.py outbox discard)"
    )


def test_what_cannot_be_done_says_so_and_changes_nothing(outbox, account, smtp):
    use_order("python3")
    submit(outbox, "Schon zugestellt")
    outbox_cmd("deliver")
    [done] = OutboxMessage.objects.all()

    with pytest.raises(CommandError, match=f"message {done.pk} cannot be retried"):
        outbox_cmd("retry", str(done.pk))
    with pytest.raises(CommandError, match="name one message id, or --all"):
        outbox_cmd("retry")
    with pytest.raises(CommandError, match="no message 99999"):
        outbox_cmd("discard", "99999")
    assert not AuditEntry.objects.filter(action__startswith="outbox").exists()
    assert OutboxMessage.objects.get(pk=done.pk).state == Outbox.DELIVERED
