"""A Django email backend that hands every message to the outbox.

    EMAIL_BACKEND = "xmailadmin.mail_backend.OutboxBackend"
    XMAILADMIN_OUTBOX = "/var/spool/xmailadmin/outbox"

``send_mail``, ``mail_admins`` and ``EmailMessage.send`` then return as soon as the
message is durably in the outbox (what ``xmail-sendmail`` does); the delivery takes it
through the preferred order, retries and bounces. Usable by the panel itself and by any
Django project that has the panel's code on its path.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from email.utils import format_datetime, localtime, make_msgid, parseaddr
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from outbox.spool import Envelope, submit


class OutboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        root = Path(settings.XMAILADMIN_OUTBOX)
        user = pwd.getpwuid(os.getuid()).pw_name
        sent = 0
        for email in email_messages:
            recipients = addresses(email.recipients())  # To, Cc and Bcc
            if not recipients:
                continue
            sent_as = envelope(email, recipients, user)
            try:
                submit(root, sent_as, as_bytes(email, sent_as.sender))
            except OSError:
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent


def addresses(recipients: Sequence[str]) -> list[str]:
    """Bare addresses for the envelope: Django takes "Name <a@example.org>" as well."""
    return list(dict.fromkeys(a for a in (parseaddr(r)[1] for r in recipients) if a))


def envelope(email: EmailMessage, recipients: list[str], user: str) -> Envelope:
    sender = parseaddr(email.from_email or settings.DEFAULT_FROM_EMAIL)[1]
    return Envelope(sender=sender, recipients=recipients, submitted_by=user)


def as_bytes(email: EmailMessage, sender: str) -> bytes:
    message = email.message()
    # A Bcc given in extra headers would show every recipient the hidden ones.
    del message["Bcc"]
    # Django adds both; a subclass may not: the delivery relies on the Message-ID to
    # send the same message again after a crash.
    if "Date" not in message:
        message["Date"] = format_datetime(localtime())
    if "Message-ID" not in message:
        # The sender's domain, not getfqdn(): a DNS lookup could hang the send.
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    return message.as_bytes()
