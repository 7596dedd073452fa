"""The words of ``transports/`` in the user's language.

``transports`` stays free of Django and speaks English; each result carries a
``reason_code`` (a step such as ``auth``, or ``tls_untrusted``...) and fixed
warning texts. Here each gets its German translation, chosen at render time
so a page shows the language of whoever reads it, whatever the worker spoke.
"""

from __future__ import annotations

import re
from functools import cache
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
    # The local relays (postfix, exim): sendmail only queues, the relay is followed.
    "still_queued": _(
        "Still in the queue of the local relay when the time was up: not delivered (yet)."
    ),
    "not_in_queue": _(
        "The local relay accepted the message, but it did not show up in its log or queue: "
        "is the relay running, and is its mail log readable?"
    ),
    "left_queue_unconfirmed": _(
        "The message left the queue of the local relay, but no log line says it was "
        "delivered: not counted as a pass (make the mail log readable)."
    ),
    "relay_not_ready": _(
        "Not handed over: the local relay is not ready (%(why)s), so nothing would "
        "deliver the message. See the relay page."
    ),
}
DELIVERED = _("Delivered by the local relay.")

# What the local relay did with a test message (TestSend.delivery).
DELIVERY = {
    "delivered": _("delivered"),
    "deferred": _("deferred"),
    "bounced": _("bounced"),
    "still_queued": _("still queued"),
    "unverified": _("queued, delivery not verified"),
}
UNVERIFIED_CODES = frozenset({"queued_unverified", "left_queue_unconfirmed", "not_in_queue"})

# The warnings transports attach to results, as they spell them; makemessages
# finds them here, and tests/panel/test_reasons.py checks none is missing.
WARNINGS = [
    gettext_noop("the server certificate was not verified: this command does not check it"),
    gettext_noop("the server certificate was not verified: the check is switched off"),
    gettext_noop(
        "mutt rewrites the message: From gets the local user's name, Date is set anew, the "
        "body is re-encoded 8bit, Content-Disposition is added (the vendor's 'faulty processing')"
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
        "GNU Mailutils sets Date anew and adds User-Agent: the vendor's 'faulty processing' of "
        "mail clients"
    ),
]


# Texts of transports/relay with changing parts (paths, hosts, tool output), as they
# spell them: %(name)s stands for the changing part. translate() finds the one a text
# matches and gives its translation with the parts filled in (translated themselves
# when they are such a text too). tests/panel/test_reasons.py runs the relay code and
# checks that each text it produces is translated.
PATTERNS = [
    # RelayStatus.notes
    gettext_noop("postfix is not installed (no postconf)"),
    gettext_noop("no %(path)s: postfix is installed but not configured"),
    gettext_noop("the mail log %(path)s is not readable"),
    gettext_noop("the SASL password map could not be read (needs root)"),
    gettext_noop("exim is not installed"),
    gettext_noop("no %(path)s: exim is not configured the Debian way"),
    gettext_noop("exim rejects its configuration: %(output)s"),
    gettext_noop(
        "no exim daemon is running: messages are sent at once, but nothing retries deferred ones"
    ),
    gettext_noop("%(path)s could not be read (needs root)"),
    # GeneratedConfig.notes
    gettext_noop(
        "the relay is given as the address %(host)s: postfix cannot check the "
        "certificate's name against an address; give the name on the certificate "
        "(tls_name) to get a verified connection"
    ),
    gettext_noop(
        "port %(port)s with %(mode)s: the usual rule is 465 = implicit TLS, others STARTTLS"
    ),
    gettext_noop(
        "exim checks the certificate against the smarthost as written (%(host)s); to check "
        "it against %(name)s, use that name as the host"
    ),
    # relay.ready(), inside "not handed over: ..."
    gettext_noop("not handed over: %(why)s, so nothing would deliver the message"),
    gettext_noop("postfix is not installed"),
    gettext_noop("postfix has no %(path)s: it is not configured"),
    gettext_noop("postfix is not running (postfix start)"),
    gettext_noop("exim cannot run: %(output)s"),
    gettext_noop("no postfix or exim is installed"),
    # warnings of a delivery through the local relay
    gettext_noop(
        "the local %(mta)s did not report a verified server certificate for this delivery"
    ),
    gettext_noop(
        "the local %(mta)s delivered to %(remote)s, not to the account's server "
        "%(server)s: its relay configuration names another server"
    ),
    # an account the relay files cannot hold (RelayAccount, render())
    gettext_noop("user must not contain ':' or blanks: the relay files split there"),
    gettext_noop("password is empty or starts or ends with a blank"),
    gettext_noop("CA file must be an absolute path without blanks: %(path)s"),
    gettext_noop("tls_name must be a host name, not an address"),
    gettext_noop("user is empty or too long"),
    gettext_noop("not a valid host name: %(host)s"),
    gettext_noop("exim's smarthost list cannot take an IPv6 address here: use a name"),
]


@cache
def _compiled() -> list[tuple[re.Pattern[str], str]]:
    compiled = []
    for msgid in PATTERNS:
        parts = re.split(r"%\((\w+)\)s", msgid)
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        compiled.append((re.compile(f"^{regex}$", re.DOTALL), msgid))
    return compiled


def translate(text: str) -> str:
    """A text of transports in the active language; as it is when none is known."""
    if not text:
        return text
    known = gettext(text)
    if known != text:
        return known
    for regex, msgid in _compiled():
        match = regex.match(text)
        if match:
            parts = {name: translate(value) for name, value in match.groupdict().items()}
            return gettext(msgid) % parts
    return text


def explain(send: TestSend) -> str:
    """The reason of a test send in the active language, with the tool's own words."""
    template = REASONS.get(send.reason_code)
    if template is None:
        return send.reason  # written by the panel itself, already translated
    if send.reason_code == "done" and send.delivered:
        text = str(DELIVERED)
        return f"{text} ({send.detail})" if send.detail else text
    account = send.account
    why = re.match(r"^not handed over: (.*), so nothing would deliver the message$", send.reason)
    text = str(template) % {
        "host": account.host if account else "?",
        "port": account.port if account else "?",
        "sender": account.sender if account else "?",
        "recipient": send.recipient,
        "why": translate(why.group(1)) if why else "?",
    }
    return f"{text} ({send.detail})" if send.detail and send.reason_code != "done" else text


def warning(text: str) -> str:
    return translate(text)
