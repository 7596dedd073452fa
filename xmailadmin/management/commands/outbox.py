"""The outbox without a browser, for support over SSH and for setups without Celery.

    manage.py outbox list [--json] [--all]
    manage.py outbox retry ID|--all
    manage.py outbox discard ID
    manage.py outbox deliver [--budget SECONDS]

``list`` shows what is waiting or being sent (``--all``: delivered and bounced too);
``retry`` makes a message due now (a bounced one gets its recipients back); ``discard``
removes it for good; ``deliver`` runs one delivery here, as the worker would. Retry and
discard go into the audit log, as on the outbox page.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from xmailadmin import delivery
from xmailadmin.models import Outbox, OutboxMessage


class Command(BaseCommand):
    help = "List, retry, discard or deliver the messages in the outbox."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        show = sub.add_parser("list", help="messages waiting or being sent")
        show.add_argument("--json", action="store_true")
        show.add_argument("--all", action="store_true", help="delivered and bounced too")
        again = sub.add_parser("retry", help="try a message now")
        again.add_argument("id", nargs="?", type=int)
        again.add_argument("--all", action="store_true", help="every waiting message")
        drop = sub.add_parser("discard", help="remove a message for good")
        drop.add_argument("id", type=int)
        run = sub.add_parser("deliver", help="deliver what is due, here and now")
        run.add_argument("--budget", type=float, default=300.0, help="seconds (300)")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _list(self, *, json: bool, all: bool, **_) -> None:  # noqa: A002 - the option names
        rows = OutboxMessage.objects.all()
        if not all:
            rows = rows.filter(state__in=[Outbox.WAITING, Outbox.SENDING])
        data = [_shown(row) for row in rows.order_by("submitted_at", "id")]
        if json:
            self.stdout.write(_json(data))
            return
        if not data:
            self.stdout.write("the outbox is empty" if not all else "no messages")
        for d in data:
            self.stdout.write(
                f"{d['id']:5d}  {d['state']:9s}  {d['age_s']:7.0f} s  {d['sender']} -> "
                f"{', '.join(d['recipients'])}  {d['subject']!r}  tries {d['attempts']}"
                + (f"  ({d['reason']})" if d["reason"] else "")
            )

    def _retry(self, *, id: int | None, all: bool, **_) -> None:  # noqa: A002
        if (id is None) == (not all):
            raise CommandError("name one message id, or --all")
        rows = OutboxMessage.objects.filter(state=Outbox.WAITING) if all else [self._row(id)]
        done = [row for row in rows if delivery.retry(row, how="manage.py outbox retry")]
        if not all and not done:
            raise CommandError(f"message {id} cannot be retried: it was delivered or is gone")
        self.stdout.write(f"{len(done)} message(s) due now")

    def _discard(self, *, id: int, **_) -> None:  # noqa: A002
        row = self._row(id)
        if not delivery.discard(row, how="manage.py outbox discard"):
            raise CommandError(f"message {id} is being sent right now; try again in a moment")
        self.stdout.write(f"message {id} discarded")

    def _deliver(self, *, budget: float, **_) -> None:
        summary = delivery.run(budget_s=budget)
        self.stdout.write(
            f"taken {summary.taken}, delivered {summary.delivered}, waiting "
            f"{summary.waiting}, bounced {summary.bounced}"
        )

    def _row(self, pk: int) -> OutboxMessage:
        try:
            return OutboxMessage.objects.get(pk=pk)
        except OutboxMessage.DoesNotExist:
            raise CommandError(f"no message {pk} in the outbox") from None


def _shown(row: OutboxMessage) -> dict:
    return {
        "id": row.pk,
        "spool_id": row.spool_id,
        "state": row.state,
        "sender": row.sender,
        "recipients": row.recipients,
        "pending": row.pending,
        "bounced_to": row.bounced_to,
        "subject": row.subject,
        "size": row.size,
        "age_s": round((timezone.now() - row.submitted_at).total_seconds(), 1),
        "attempts": row.attempts,
        "next_try": row.next_try_at.isoformat() if row.next_try_at else None,
        "delivered_by": row.delivered_by,
        "reason": row.reason,
        "tries": [
            {
                "recipient": t.recipient, "command": t.command, "ok": t.ok,
                "permanent": t.permanent, "step": t.step, "reason": t.reason,
                "tls_version": t.tls_version, "duration_s": t.duration_s,
                "at": t.at.isoformat(),
            }
            for t in row.tries.all()
        ],
    }  # fmt: skip


def _json(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
