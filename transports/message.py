"""The RFC 5322 test message every mail command sends."""

from __future__ import annotations

import email.policy
import email.utils
import socket
import uuid
from email.message import EmailMessage

TEST_ID_HEADER = "X-Xmailadmin-Test-Id"

_TEXT = {
    "de": (
        "xmailadmin Testmail über {command} – Prüfung äöü ÄÖÜ ß",
        "Diese Testmail wurde von xmailadmin über den Mail-Befehl „{command}“ versendet.\n"
        "Kommt sie an, funktioniert der Versand über diesen Befehl.\n\n"
        "Umlaute zur Kontrolle: äöü ÄÖÜ ß €\n",
    ),
    "en": (
        "xmailadmin test mail via {command} – check äöü ÄÖÜ ß",
        'This test mail was sent by xmailadmin through the mail command "{command}".\n'
        "If it arrived, sending through this command works.\n\n"
        "Umlauts to check: äöü ÄÖÜ ß €\n",
    ),
}


_POLICY = email.policy.SMTP.clone(linesep="\n")


def new_test_id() -> str:
    return uuid.uuid4().hex


def build_test_message(
    *,
    sender: str,
    recipient: str,
    command: str,
    test_id: str | None = None,
    language: str = "de",
    subject: str | None = None,
    body: str | None = None,
) -> bytes:
    """Return the message as CRLF-free bytes, 7-bit clean so any SMTP path keeps it intact."""
    default_subject, default_body = _TEXT.get(language, _TEXT["en"])
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject if subject is not None else default_subject.format(command=command)
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = email.utils.make_msgid(idstring="xmailadmin", domain=_domain(sender))
    msg[TEST_ID_HEADER] = test_id or new_test_id()
    msg["X-Mailer"] = f"xmailadmin via {command}"
    text = body if body is not None else default_body.format(command=command)
    # quoted-printable keeps lines short and 7-bit, so neither 8BITMIME nor
    # line-length limits of old tools can change the content on the way.
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()


def with_utf8_headers(message: bytes) -> bytes:
    """The message with RFC 2047 headers decoded to raw UTF-8.

    Mail clients such as s-nail re-encode every header themselves and mangle
    one that is encoded already; given UTF-8 they encode it correctly.
    """
    msg = email.message_from_bytes(message, policy=_POLICY)
    for name, value in list(msg.items()):
        if "=?" in value:
            continue  # the parser could not decode it; leave it as it came
        if str(value) != value.encode("ascii", "replace").decode():
            msg.replace_header(name, str(value))
    return msg.as_bytes(policy=_POLICY.clone(utf8=True))


def _domain(sender: str) -> str:
    domain = sender.rpartition("@")[2]
    return domain or socket.getfqdn()
