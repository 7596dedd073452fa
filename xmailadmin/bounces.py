"""The notice to a message's sender when the outbox could not deliver it.

It goes into the outbox like any message, marked as a notice: a notice that cannot be
delivered itself is never answered by another (that is how bounce loops start).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from outbox import spool
from transports.base import TargetError, check_address

from .models import Account, OutboxMessage

log = logging.getLogger(__name__)


def notify(folder: Path, row: OutboxMessage) -> str | None:
    """Submit the notice for ``row``; its spool id, or None when there is nobody to tell."""
    try:
        check_address(row.sender)
    except TargetError:
        log.warning("outbox: %s bounced; its sender %r cannot be told", row.spool_id, row.sender)
        return None
    account = Account.default()
    sender = account.sender if account else row.sender
    with translation.override(settings.LANGUAGE_CODE):
        notice = _notice(row, sender)
    envelope = spool.Envelope(
        sender=sender, recipients=[row.sender], submitted_by="xmailadmin", kind="bounce"
    )
    try:
        return spool.submit(folder, envelope, notice)
    except OSError as exc:
        log.error("outbox: no bounce notice for %s: %s", row.spool_id, exc)
        return None


def _notice(row: OutboxMessage, sender: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"xmailadmin <{sender}>"
    message["To"] = row.sender
    message["Subject"] = _("Undeliverable: %(subject)s") % {"subject": row.subject or "-"}
    message["Date"] = format_datetime(localtime())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-replied"  # RFC 3834: no auto-reply to this
    lines = [
        _("Your message could not be delivered to these recipients:"),
        "",
        *[f"  {address}" for address in row.bounced_to],
        "",
        _("Reason: %(reason)s") % {"reason": row.explanation},
        _("Attempts: %(n)d") % {"n": row.attempts},
        "",
        _("Subject: %(subject)s") % {"subject": row.subject},
        f"Message-ID: {row.message_id}",
        _("Outbox id: %(id)s") % {"id": row.spool_id},
    ]
    message.set_content("\n".join(lines))
    return message.as_bytes()
