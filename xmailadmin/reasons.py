"""The words of ``transports/`` in the user's language.

``transports`` stays free of Django and speaks English; each result carries a
``reason_code`` (a step such as ``auth``, or ``tls_untrusted``...) and fixed
warning texts. Here each gets its German translation, chosen at render time
so a page shows the language of whoever reads it, whatever the worker spoke.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from .models import TestSend

REASONS = {
    "connect": _("Could not connect to %(host)s:%(port)s: check host name, port and firewall."),
    "tls": _(
        "TLS failed: check the certificate and the mode (465 = implicit TLS, others STARTTLS)."
    ),
    "tls_untrusted": _(
        "The server certificate is not trusted: set the CA file or fix the "
        "server's certificate chain."
    ),
    "tls_hostname": _("The server certificate does not match the host name %(host)s."),
    "tls_version": _(
        "No TLS version in common: the server or this command is too old (TLS 1.2 is needed)."
    ),
    "tls_mode": _(
        "TLS handshake failed: does the mode fit the port? (465 = implicit TLS, others STARTTLS)"
    ),
    "ehlo": _("The server refused the greeting (EHLO)."),
    "auth": _("The server rejected user name or password."),
    "mail_from": _("The server refused the sender address %(sender)s."),
    "rcpt_to": _("The server refused the recipient %(recipient)s."),
    "data": _("The server refused the message."),
    "queue": _("The local mail system did not accept the message."),
    "queued_unverified": _(
        "Queued by the local relay, delivery not verified: sendmail returns "
        "as soon as the message is queued."
    ),
    "needs_relay": _(
        "bsd-mailx cannot speak SMTP or log in itself: it needs a local sendmail "
        "relay (postfix or exim) configured for this account."
    ),
    "timeout": _(
        "No answer in time; the command was stopped. Check host, port and mode "
        "(465 = implicit TLS, others STARTTLS)."
    ),
    "not_installed": _("This mail command is not installed on this server."),
    "unsupported": _("This mail command cannot send this way."),
    "password_quotes": _("Heirloom mailx cannot take a password containing both ' and \"."),
    "unknown": _("The mail command failed."),
    "done": _("Sent."),
}

# The warnings transports attach to results, as they spell them; makemessages
# finds them here, and tests/panel/test_reasons.py checks none is missing.
WARNINGS = [
    gettext_noop("the server certificate was not verified: this command does not check it"),
    gettext_noop("the server certificate was not verified: the check is switched off"),
    gettext_noop(
        "mutt rewrites the message: From gets the local user's name, the body is re-encoded "
        "8bit, Content-Disposition is added (the vendor's 'faulty processing')"
    ),
    gettext_noop(
        "s-nail adds a second Date and MIME-Version, a contradicting second Content-Type "
        "(us-ascii) and User-Agent (the vendor's 'faulty processing')"
    ),
    gettext_noop(
        "mailx adds a second Date, MIME-Version and Content-Type, and User-Agent: the vendor's "
        "'faulty processing' of mail clients"
    ),
    gettext_noop(
        "GNU Mailutils adds a User-Agent header: the vendor's 'faulty processing' of mail clients"
    ),
]


def explain(send: TestSend) -> str:
    """The reason of a test send in the active language, with the tool's own words."""
    template = REASONS.get(send.reason_code)
    if template is None:
        return send.reason  # written by the panel itself, already translated
    account = send.account
    text = str(template) % {
        "host": account.host if account else "?",
        "port": account.port if account else "?",
        "sender": account.sender if account else "?",
        "recipient": send.recipient,
    }
    return f"{text} ({send.detail})" if send.detail and send.reason_code != "done" else text


def warning(text: str) -> str:
    return gettext(text)
