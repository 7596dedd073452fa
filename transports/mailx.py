"""The three ``mailx`` families: Heirloom (own SMTP), GNU Mailutils (own SMTP,
no certificate check) and BSD (none: it hands everything to the local sendmail).
"""

from __future__ import annotations

import urllib.parse

from .base import SendResult, Step, Target, Transport
from .command import CommandTransport, Invocation
from .message import with_utf8_headers
from .secrecy import PrivateDir

_FAULTY = "the vendor's 'faulty processing' of mail clients"


class HeirloomMailx(CommandTransport):
    key = "mailx-heirloom"
    binary = "heirloom-mailx"
    rewrites = f"mailx adds a second Date, MIME-Version and Content-Type, and User-Agent: {_FAULTY}"

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        # Heirloom knows no escapes inside quotes: pick the quote the password lacks.
        quote = "'" if "'" not in target.password else '"'
        rc = tmp.write("mailrc", f"set smtp-auth-password={quote}{target.password}{quote}\n")
        scheme = "smtps://" if target.implicit_tls else ""
        argv = [
            exe, "-n", "-Snosave", "-Ssendwait", "-Sverbose",
            f"-Ssmtp={scheme}{target.url_host}:{target.port}",
            "-Ssmtp-auth=login", f"-Ssmtp-auth-user={target.user}",
            "-Sssl-verify=strict", f"-Shostname={target.helo}", f"-Sfrom={target.sender}",
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
                reason="Heirloom mailx cannot take a password with both ' and \" in it",
                reason_code="password_quotes",
            )
        return super()._send(exe, target, message)


class MailutilsMailx(CommandTransport):
    key = "mailx-mailutils"
    binary = "mail.mailutils"
    verifies_certificate = False  # measured: untrusted CA and wrong host name both delivered
    rewrites = f"GNU Mailutils adds a User-Agent header: {_FAULTY}"

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
    key = "mailx-bsd"
    binary = "bsd-mailx"

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        return SendResult(
            ok=False,
            step=Step.UNSUPPORTED,
            reason=(
                "bsd-mailx cannot speak SMTP or log in itself: it needs a local sendmail relay "
                "(postfix or exim) configured for this account"
            ),
        )
