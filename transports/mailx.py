"""The three ``mailx`` families: Heirloom (own SMTP), GNU Mailutils (own SMTP,
no certificate check) and BSD (none: it hands everything to the local sendmail).
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import urllib.parse

from .base import SendResult, Step, Target, Transport, config_value
from .command import CommandTransport, Invocation
from .message import with_utf8_headers
from .relay import EximRelay, PostfixRelay, local_relay
from .relay.follow import with_message_id
from .relay.local import SENDMAIL as DEFAULT_SENDMAIL
from .secrecy import PrivateDir, private_dir
from .texts import Text, gettext_noop

LocalRelay = PostfixRelay | EximRelay


class HeirloomMailx(CommandTransport):
    key = "mailx-heirloom"
    binary = "heirloom-mailx"
    rewrites = Text(
        gettext_noop(
            "mailx adds a second Date, MIME-Version and Content-Type, and User-Agent: the "
            "vendor's 'faulty processing' of mail clients"
        )
    )

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        # Heirloom knows no escapes inside quotes: pick the quote the password lacks.
        quote = "'" if "'" not in target.password else '"'
        password = config_value(target.password)
        rc = tmp.write("mailrc", f"set smtp-auth-password={quote}{password}{quote}\n")
        scheme = "smtps://" if target.implicit_tls else ""
        argv = [
            exe, "-n", "-Snosave", "-Ssendwait", "-Sverbose",
            f"-Ssmtp={scheme}{target.url_host}:{target.port}",
            "-Ssmtp-auth=login", f"-Ssmtp-auth-user={target.user}",
            f"-Sssl-verify={'strict' if target.verify else 'ignore'}",
            f"-Shostname={target.helo}", f"-Sfrom={target.sender}",
        ]  # fmt: skip
        if not target.implicit_tls:
            argv.append("-Ssmtp-use-starttls")
        if target.ca_file:
            argv.append(f"-Sssl-ca-file={target.ca_file}")
        return Invocation([*argv, "-t"], stdin=with_utf8_headers(message), env={"MAILRC": rc})

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        if "'" in target.password and '"' in target.password:
            return SendResult(
                ok=False,
                step=Step.CONFIG,
                reason=Text(
                    gettext_noop("Heirloom mailx cannot take a password with both ' and \" in it")
                ),
                reason_code="password_quotes",
            )
        return super()._send(exe, target, message)


class MailutilsMailx(CommandTransport):
    key = "mailx-mailutils"
    binary = "mail.mailutils"
    verifies_certificate = False  # measured: untrusted CA and wrong host name both delivered
    rewrites = Text(
        gettext_noop(
            "GNU Mailutils sets Date anew and adds User-Agent: the vendor's 'faulty processing' "
            "of mail clients"
        )
    )

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        scheme = "smtps" if target.implicit_tls else "smtp"
        user = urllib.parse.quote(target.user, safe="")
        password = urllib.parse.quote(target.password, safe="")
        # Mailutils looks credentials up in ~/.mu-tickets (HOME is our private folder).
        tmp.write(".mu-tickets", f"{scheme}://{user}:{password}@{target.url_host}\n")
        url = f"{scheme}://{user}@{target.url_host}:{target.port}"
        argv = [
            # nodot: otherwise a line holding only "." ends the message early.
            exe, "--no-config", "-E", f'set sendmail="{url}"', "-E", "set nodot",
            "-E", "set verbose",
            "-r", target.sender, "-t",
        ]  # fmt: skip
        return Invocation(argv, stdin=message)


class BsdMailx(Transport):
    """BSD mailx has no SMTP of its own: it passes every message to the local sendmail.

    So it can only be tested through a local relay, and only as honestly as that relay
    is followed: the message goes through bsd-mailx into the relay's queue and counts
    as sent once the relay has delivered it.
    """

    key = "mailx-bsd"
    reads_ca_file = False  # it hands over to the local relay
    binary = "bsd-mailx"

    def __init__(self, executable: str | None = None, relay: LocalRelay | None = None) -> None:
        super().__init__(executable)
        self._relay = relay

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        relay = self._relay or local_relay()
        if relay is None:
            ready, why = False, Text(gettext_noop("no postfix or exim is installed"))
        else:
            ready, why = relay.ready()
        sendmail = relay.plain_sendmail() if relay and ready else None
        if relay is None or sendmail is None:
            if ready:
                why = Text(
                    gettext_noop("the relay needs options a plain sendmail call cannot pass")
                )
            return SendResult(
                ok=False,
                step=Step.UNSUPPORTED,
                reason=Text(
                    gettext_noop(
                        "bsd-mailx cannot speak SMTP or log in itself: it needs a local sendmail "
                        "relay (postfix or exim) configured for this account (%(why)s)"
                    ),
                    {"why": why},
                ),
                reason_code="needs_relay",
            )
        message, message_id = with_message_id(message, target.sender)
        headers, body = _split_for_mailx(message)
        argv = [exe, "-s", headers.pop("subject", ("Subject", ""))[1], "-r", target.sender]
        for name, value in headers.values():
            argv += ["-a", f"{name}: {value}"]
        with private_dir() as tmp:
            if sendmail != DEFAULT_SENDMAIL:
                tmp.write(".mailrc", f"set sendmail={sendmail}\n")
            env = {"HOME": str(tmp.path), **relay.handover_env()}
            argv += ["--", target.recipient]
            return relay.hand_over(argv, stdin=body, env=env, target=target, message_id=message_id)


# mailx makes these itself from its arguments (Subject from -s).
_MAILX_OWN = {"from", "to", "cc", "bcc", "date", "sender"}


def _split_for_mailx(message: bytes) -> tuple[dict[str, tuple[str, str]], bytes]:
    """The headers mailx must be given with -s/-a (lowercase name -> (name, value)), and
    the body it reads from stdin."""
    match = re.search(rb"\r?\n\r?\n", message)
    head, body = (message[: match.start()], message[match.end() :]) if match else (message, b"")
    parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    headers = {}
    for name, value in parsed.items():
        if name.lower() not in _MAILX_OWN:
            # -a takes one line: unfold continuation lines.
            headers[name.lower()] = (name, re.sub(r"\r?\n[ \t]+", " ", str(value)).strip())
    return headers, body
