"""Delivering the outbox: each message through the preferred order, with fallback,
retries on postfix's schedule, and a bounce notice when it cannot be delivered.

The guarantee, at least once and never lost: a recipient counts as done only after
the server (or the relay, once it delivered) took the message, and that is written to
the row before the next recipient is tried. A process killed in between leaves the
message in ``cur/`` with its lock released; the next run sends it again, with the same
Message-ID. With nothing crashing, no recipient gets it twice.

Runs in the Celery worker (``tasks.deliver_outbox``) or without it
(``manage.py outbox deliver``); the SMTP password is decrypted here, per message.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_string, policy
from email.header import decode_header, make_header
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox import spool, store
from transports.base import SendResult, TargetError, ascii_address
from transports.sending import Item, send_all_in_order
from transports.texts import Text, gettext_noop

from . import bounces, order, recovery, relay_settings
from .crypto import PasswordUnreadable
from .models import Account, AuditEntry, DeliveryAttempt, Outbox, OutboxMessage

log = logging.getLogger(__name__)

NO_ACCOUNT = Text(gettext_noop("no SMTP account is set up: add one on the accounts page"))
NO_COMMAND = Text(gettext_noop("no mail command is switched on in the preferred order"))
UNREADABLE = Text(
    gettext_noop(
        "the stored password cannot be decrypted with the configured key: enter the "
        "password in the account again"
    )
)
EXPIRED = gettext_noop("not delivered within %(hours)s hours; the last reason: %(reason)s")
GONE = Text(gettext_noop("the message file is missing from the outbox"))


def root() -> Path:
    return Path(settings.XMAILADMIN_OUTBOX)


@dataclass
class Summary:
    taken: int = 0
    delivered: int = 0
    waiting: int = 0
    bounced: int = 0
    recovered: int = 0
    ids: list[int] = field(default_factory=list)


# --- taking what was dropped ---------------------------------------------------------


def pickup(folder: Path) -> int:
    """A row for every message in ``new/``, then the message into ``cur/``."""
    if removed := store.sweep_tmp(folder):
        log.warning("outbox: removed %d half-written message(s) from tmp/", removed)
    taken = 0
    for spool_id in store.dropped(folder):
        try:
            envelope, message = spool.read(folder / "new" / spool_id)
        except FileNotFoundError:
            continue  # another run took it
        except (ValueError, TypeError, UnicodeDecodeError):
            log.error("outbox: %s is not a message file; moved to done/", spool_id)
            store.take(folder, spool_id)
            store.put_away(folder, spool_id)
            continue
        OutboxMessage.objects.get_or_create(spool_id=spool_id, defaults=_row(envelope, message))
        store.take(folder, spool_id)
        taken += 1
    return taken


def _row(envelope: spool.Envelope, message: bytes) -> dict:
    # Applications write raw UTF-8 in headers as often as RFC 2047 words: read both.
    head = message_from_string(
        message.split(b"\n\n", 1)[0].decode("utf-8", "replace"), policy=policy.compat32
    )
    return {
        "kind": envelope.kind,
        "sender": envelope.sender,
        "recipients": envelope.recipients,
        "pending": envelope.recipients,
        "subject": _header(head.get("Subject", ""))[:998],
        "message_id": _header(head.get("Message-ID", ""))[:998],
        "size": len(message),
        "submitted_by": envelope.submitted_by[:64],
        "submitted_at": datetime.fromtimestamp(envelope.submitted_at, tz=UTC),
        "next_try_at": timezone.now(),
    }


def _header(value) -> str:
    try:
        return str(make_header(decode_header(str(value)))).strip()
    except (ValueError, LookupError):  # a broken encoded word: shown as it came
        return str(value).strip()


def recover(folder: Path) -> int:
    """Rows left "being sent" by a process that died: their lock is free again."""
    stale = [
        row.pk
        for row in OutboxMessage.objects.filter(state=Outbox.SENDING)
        if store.is_free(folder, row.spool_id)
    ]
    return OutboxMessage.objects.filter(pk__in=stale, state=Outbox.SENDING).update(
        state=Outbox.WAITING, next_try_at=timezone.now()
    )


def due_now() -> bool:
    """Whether a run would find work: a message dropped, due, or left by a dead process."""
    folder = root()
    try:
        if store.dropped(folder):
            return True
    except OSError:
        return False
    if OutboxMessage.objects.filter(state=Outbox.WAITING, next_try_at__lte=timezone.now()).exists():
        return True
    sending = OutboxMessage.objects.filter(state=Outbox.SENDING).values_list("spool_id", flat=True)
    return any(store.is_free(folder, spool_id) for spool_id in sending)


# --- one run ---------------------------------------------------------------------------

# Rows taken per round: enough to share among the workers and to fill a connection of a
# command that carries many messages, few enough that a round ends soon.
ROUND_ROWS = 200


def run(folder: Path | None = None, budget_s: float = 60.0) -> Summary:
    """Take what was dropped, then deliver what is due until ``budget_s`` has passed."""
    folder = folder or root()
    summary = Summary(taken=pickup(folder), recovered=recover(folder))
    deadline = time.monotonic() + budget_s
    tried: set[int] = set()
    while time.monotonic() < deadline:
        # What came in meanwhile (an alert, a notice, an application's message) is
        # taken in this run too, not only at the next wake-up.
        summary.taken += pickup(folder)
        due = list(
            OutboxMessage.objects.filter(state=Outbox.WAITING, next_try_at__lte=timezone.now())
            .exclude(pk__in=tried)
            .order_by("next_try_at", "id")[:ROUND_ROWS]
        )
        if not due:
            break
        tried.update(row.pk for row in due)
        for row, state in deliver_rows(folder, due):
            summary.ids.append(row.pk)
            setattr(summary, state, getattr(summary, state) + 1)
    return summary


@dataclass
class _Setup:
    """What every message of a round is sent with, read once per round."""

    account: Account | None
    keys: list[str]
    password: str = ""
    problem: Text | None = None

    @classmethod
    def now(cls) -> _Setup:
        setup = cls(Account.default(), order.enabled_keys())
        if setup.account is None:
            setup.problem = NO_ACCOUNT
        elif not setup.keys:
            setup.problem = NO_COMMAND
        else:
            try:
                setup.password = setup.account.decrypt_password()
            except PasswordUnreadable:
                setup.problem = UNREADABLE
        return setup


def deliver_rows(folder: Path, rows: list[OutboxMessage]) -> list[tuple[OutboxMessage, str]]:
    """One round for each row this process can take: every pending recipient through the
    order, several mail commands at once. Each row's lock is held until the row is
    settled; the new state of each row taken."""
    setup = _Setup.now()
    settled: list[tuple[OutboxMessage, str]] = []
    with ExitStack() as locks:
        held: dict[int, ExitStack] = {}
        items: list[Item] = []
        for row in rows:
            lock = ExitStack()
            message, state = _take(folder, row, lock)
            if message is None:  # another process has it, or it ended here
                lock.close()
                if state is not None:
                    settled.append((row, state))
                continue
            locks.enter_context(lock)
            held[row.pk] = lock
            if setup.problem is not None:
                _note(row, setup.problem)
                _attempt(row, row.pending[0] if row.pending else "", None, setup.problem)
                continue
            items += _items(row, setup, message)
        open_items = Counter(item.tag[0].pk for item in items)
        taken = {row.pk: row for row in rows if row.pk in held}

        def heard(item: Item, result: SendResult, final: bool) -> None:
            row, recipient = item.tag  # as submitted: the target may hold its A-label form
            _attempt(row, recipient, result)
            if not final:
                return
            _ended(row, recipient, result)
            open_items[row.pk] -= 1
            if open_items[row.pk] == 0:
                settled.append((row, _settle(folder, row)))
                held.pop(row.pk).close()

        send_all_in_order(
            items, setup.keys, relay_settings.transport_for, heard,
            workers=settings.XMAILADMIN_OUTBOX_CONCURRENCY,
        )  # fmt: skip
        for pk, lock in list(held.items()):  # rows with nothing left to send
            settled.append((taken[pk], _settle(folder, taken[pk])))
            lock.close()
    return settled


def _take(folder: Path, row: OutboxMessage, lock: ExitStack) -> tuple[bytes | None, str | None]:
    """The row's lock into ``lock``, the row marked as being sent, and its message. No
    message when another process has the row or has finished it, or when its file is
    gone (then the row ended here, and its state comes second)."""
    if not lock.enter_context(store.held(folder, row.spool_id)):
        return None, None
    row.refresh_from_db()  # under the lock: another process may have finished it
    if row.state not in (Outbox.WAITING, Outbox.SENDING):
        return None, None
    loaded = store.load(folder, row.spool_id)
    if loaded is None:
        _finish(folder, row, Outbox.BOUNCED, GONE)
        return None, "bounced"
    row.state, row.attempts = Outbox.SENDING, row.attempts + 1
    row.save(update_fields=["state", "attempts"])
    return loaded[1], None


def _items(row: OutboxMessage, setup: _Setup, message: bytes) -> list[Item]:
    items = []
    for recipient in list(row.pending):
        try:
            target = setup.account.target(setup.password, ascii_address(recipient))
        except TargetError as exc:  # an address no mail command may be given: permanent
            _attempt(row, recipient, None, exc.text, permanent=True)
            _done_with(row, recipient, bounced=True, reason=exc.text)
            continue
        items.append(Item((row, recipient), target, message))
    return items


def _ended(row: OutboxMessage, recipient: str, last: SendResult) -> None:
    if last.ok:
        row.delivered_by = last.command
        _done_with(row, recipient, bounced=False, reason=last.reason)
    elif last.permanent:
        _done_with(row, recipient, bounced=True, reason=last.reason)
    else:
        _note(row, last.reason)


def _attempt(row, recipient: str, result: SendResult | None, reason: Text | None = None,
             *, permanent: bool = False) -> None:  # fmt: skip
    if result is None:
        DeliveryAttempt.objects.create(
            message=row, round=row.attempts, recipient=recipient, step="config",
            reason=str(reason), reason_code="config", reason_text=reason.to_dict(),
            permanent=permanent,
        )  # fmt: skip
        return
    DeliveryAttempt.objects.create(
        message=row,
        round=row.attempts,
        recipient=recipient,
        command=result.command,
        ok=result.ok,
        permanent=result.permanent,
        step=result.step.value,
        reason=str(result.reason),
        reason_code=result.reason_code,
        reason_text=result.reason.to_dict(),
        detail=result.detail.replace("\x00", ""),
        transcript=result.transcript.replace("\x00", ""),
        tls_version=result.tls_version or "",
        duration_s=result.duration_s,
    )


def _done_with(row: OutboxMessage, recipient: str, *, bounced: bool, reason: Text) -> None:
    """Written at once: a crash after this never sends to this recipient again."""
    row.pending = [r for r in row.pending if r != recipient]
    if bounced:
        row.bounced_to = [*row.bounced_to, recipient]
    _note(row, reason)
    row.save(update_fields=["pending", "bounced_to", "delivered_by", "reason", "reason_text"])


def _note(row: OutboxMessage, reason: Text) -> None:
    row.reason, row.reason_text = str(reason), reason.to_dict()


def _settle(folder: Path, row: OutboxMessage) -> str:
    if not row.pending:
        state = Outbox.BOUNCED if row.bounced_to else Outbox.DELIVERED
        _finish(folder, row, state, None)
        return state.value
    age = timezone.now() - row.submitted_at
    if age >= timedelta(seconds=settings.XMAILADMIN_OUTBOX_LIFETIME):
        last = Text.from_dict(row.reason_text) if row.reason_text else row.reason
        hours = round(settings.XMAILADMIN_OUTBOX_LIFETIME / 3600, 1)
        reason = Text(EXPIRED, {"hours": f"{hours:g}", "reason": last})
        row.bounced_to = [*row.bounced_to, *row.pending]
        row.pending = []
        _finish(folder, row, Outbox.BOUNCED, reason)
        return "bounced"
    row.state = Outbox.WAITING
    row.next_try_at = timezone.now() + backoff(row.attempts)
    row.save(update_fields=["state", "next_try_at", "reason", "reason_text"])
    _status(folder, row)
    return "waiting"


def backoff(attempts: int) -> timedelta:
    """postfix's schedule: the first wait, doubled per round, up to the longest."""
    first, longest = settings.XMAILADMIN_OUTBOX_MIN_BACKOFF, settings.XMAILADMIN_OUTBOX_MAX_BACKOFF
    return timedelta(seconds=min(longest, first * 2 ** max(0, attempts - 1)))


def _finish(folder: Path, row: OutboxMessage, state: Outbox, reason: Text | None) -> None:
    row.state, row.finished_at, row.next_try_at = state, timezone.now(), None
    if reason is not None:
        _note(row, reason)
    with transaction.atomic():
        row.save()
    if state is Outbox.DELIVERED:
        store.remove(folder, row.spool_id)
        recovery.after_delivery(folder, row)
    else:
        store.put_away(folder, row.spool_id)
        if state is Outbox.BOUNCED and row.kind == "message":  # never a notice for a notice
            bounces.notify(folder, row)  # into the outbox like any message
    _status(folder, row)


def _status(folder: Path, row: OutboxMessage) -> None:
    try:
        store.write_status(
            folder,
            row.spool_id,
            {
                "state": row.state,
                "command": row.delivered_by,
                "reason": row.reason,
                "attempts": row.attempts,
                "next_try": row.next_try_at.isoformat() if row.next_try_at else None,
            },
        )
    except OSError as exc:  # only --wait reads it: never a reason to fail a delivery
        log.warning("outbox: no status for %s: %s", row.spool_id, exc)


# --- by hand (pages and manage.py) -----------------------------------------------------


def retry(row: OutboxMessage, folder: Path | None = None, *, by=None, how: str = "") -> bool:
    """Due now; a bounced message gets its bounced recipients back. False when the
    message file is gone (delivered or discarded). Audited as done ``by`` a user (None:
    the system, such as manage.py), ``how`` saying through what."""
    folder = folder or root()
    row.refresh_from_db()  # a page's row may be older than the delivery's last word
    if row.state in (Outbox.DELIVERED, Outbox.SENDING):
        return False
    if not store.bring_back(folder, row.spool_id):
        return False
    if row.state in (Outbox.BOUNCED, Outbox.DISCARDED):
        row.pending, row.bounced_to = list(row.bounced_to or row.pending), []
        row.finished_at = None
    row.state, row.next_try_at = Outbox.WAITING, timezone.now()
    row.save(update_fields=["pending", "bounced_to", "finished_at", "state", "next_try_at"])
    _audit(row, AuditEntry.Action.OUTBOX_RETRY, by, how)
    return True


def discard(row: OutboxMessage, folder: Path | None = None, *, by=None, how: str = "") -> bool:
    """Gone for good; False while a delivery is sending it (try again in a moment).
    Audited as :func:`retry` is."""
    folder = folder or root()
    in_cur = (folder / "cur" / row.spool_id).exists()
    if in_cur and not store.is_free(folder, row.spool_id):  # a delivery has it right now
        return False
    row.state, row.finished_at, row.next_try_at = Outbox.DISCARDED, timezone.now(), None
    row.save(update_fields=["state", "finished_at", "next_try_at"])
    store.forget(folder, row.spool_id)
    store.drop_status(folder, row.spool_id)
    _audit(row, AuditEntry.Action.OUTBOX_DISCARD, by, how)
    return True


def _audit(row: OutboxMessage, action: str, by, how: str) -> None:
    """Who to whom and the subject: what an auditor needs to know which mail it was."""
    detail = f"{row.sender} → {', '.join(row.recipients)}"
    if row.subject:
        detail += f" · {row.subject}"
    if how:
        detail += f" ({how})"
    AuditEntry.record(by, action, target=row.spool_id, detail=detail[:1000])
