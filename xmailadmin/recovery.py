"""The mail to the admin address when the outbox delivers again after no way worked.

While every mail command fails, nothing can tell the admin by mail; the dashboard warns
once a message has waited past ``XMAILADMIN_OUTBOX_WARN_AGE``. The first delivery after
that is the moment a mail can go out: it says which command works again, for how long
nothing did and why, and how much is still waiting. It goes into the outbox like any
message (so it too is delivered through the order, which now works) and is marked as a
notice: it is never bounced to anyone nor answered by another notice.

One alert per outage: an alert sent after a message came in has covered its outage.
Every alert is in the audit log, also when no admin address is set to send it to.
"""

from __future__ import annotations

import logging
import socket
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from outbox import spool
from transports.base import MESSAGE_STEPS

from .models import Account, AuditEntry, DeliveryAttempt, Outbox, OutboxMessage
from .texts import moment, say

log = logging.getLogger(__name__)

KIND = "alert"


def after_delivery(folder: Path, row: OutboxMessage) -> str | None:
    """When ``row`` was just delivered and it ends an outage, the alert's spool id (or ""
    when there was nobody to send it to); None when there is nothing to say."""
    if row.kind != "message" or (before := _outage_ended(row)) is None:
        return None
    waited = timezone.now() - row.submitted_at
    admin = spool.admin_address(folder)
    account = Account.default()
    # The audit log's words are English data, as every entry's detail.
    detail = f"through {row.delivered_by}, after {int(waited.total_seconds() // 60)} minutes"
    if not admin or account is None:
        AuditEntry.record(
            None, AuditEntry.Action.OUTBOX_ALERT, target=row.spool_id,
            detail=f"{detail}; no admin address is set, no alert mail",
        )  # fmt: skip
        log.warning("outbox: mail works again (%s); no admin address to tell", detail)
        return ""
    with translation.override(settings.LANGUAGE_CODE):
        text = _alert(account.sender, admin, row.command_label, row, before)
    envelope = spool.Envelope(
        sender=account.sender, recipients=[admin], submitted_by="xmailadmin", kind=KIND
    )
    try:
        spool_id = spool.submit(folder, envelope, text)
    except OSError as exc:
        log.error("outbox: no alert mail (%s): %s", detail, exc)
        return None
    AuditEntry.record(
        None, AuditEntry.Action.OUTBOX_ALERT, target=spool_id, detail=f"{detail}; to {admin}"
    )
    return spool_id


def _outage_ended(row: OutboxMessage) -> DeliveryAttempt | None:
    """The last failed attempt of the outage this delivery ends, or None when it ends
    none: the message waited past the warning age, its round before this one found no
    way to deliver (no command got as far as the message), and no alert went out since
    it was submitted."""
    waited = (timezone.now() - row.submitted_at).total_seconds()
    if waited < settings.XMAILADMIN_OUTBOX_WARN_AGE or row.attempts < 2:
        return None
    before = list(DeliveryAttempt.objects.filter(message=row, round=row.attempts - 1))
    if not before or {a.step for a in before} & {step.value for step in MESSAGE_STEPS}:
        return None  # the server refused this message itself: the way was fine
    if AuditEntry.objects.filter(
        action=AuditEntry.Action.OUTBOX_ALERT, at__gte=row.submitted_at
    ).exists():
        return None
    return before[-1]  # attempts are ordered by id


def _alert(
    sender: str, admin: str, command: str, row: OutboxMessage, before: DeliveryAttempt
) -> bytes:
    host = socket.gethostname()
    waiting = OutboxMessage.objects.filter(state__in=(Outbox.WAITING, Outbox.SENDING))
    oldest = waiting.order_by("submitted_at").first()
    message = EmailMessage()
    message["From"] = f"xmailadmin <{sender}>"
    message["To"] = admin
    message["Subject"] = _("Mail works again on %(host)s") % {"host": host}
    message["Date"] = format_datetime(localtime())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-reply to this
    lines = [
        _("The outbox on %(host)s delivers again, through %(command)s.")
        % {
            "host": host,
            "command": command,
        },  # fmt: skip
        "",
        _("A message submitted at %(time)s had to wait %(minutes)d minutes.")
        % {
            "time": moment(row.submitted_at),
            "minutes": (timezone.now() - row.submitted_at).total_seconds() // 60,
        },
    ]
    reason = say(before.reason_text or before.reason)
    lines.append(
        _("Before, no mail command could deliver: %(reason)s")
        % {"reason": f"{before.command_label or '-'}: {reason}"}
    )
    lines += [
        _("Still waiting in the outbox: %(n)d (they are sent in turn now).")
        % {"n": waiting.count()},
    ]
    if oldest is not None:
        lines.append(_("The oldest since: %(time)s") % {"time": moment(oldest.submitted_at)})
    lines += ["", _("Every attempt is on the panel's outbox page.")]
    message.set_content("\n".join(lines))
    return message.as_bytes()
