"""The three ``mailx`` families: Heirloom (own SMTP), GNU Mailutils (own SMTP,
no certificate check) and BSD (none: it hands everything to the local sendmail).

All three answer to ``mailx`` and ``mail``, so they are told apart by what ``-V``
prints, not by their names: by the probe and by the send alike.
"""

from __future__ import annotations

import email.parser
import email.policy
import os
import re
import urllib.parse
from collections.abc import Sequence
from typing import ClassVar

from .base import SendResult, Step, Target, Transport, config_value
from .command import CommandTransport, Invocation
from .detection import Detection, apply_tls, missing, same_file
from .message import with_utf8_headers
from .relay import Relay, local_relay
from .relay.follow import with_message_id
from .relay.local import SENDMAIL as DEFAULT_SENDMAIL
from .run import locate, which
from .s_nail import parse_snail_version
from .secrecy import PrivateDir, private_dir
from .texts import Text, gettext_noop
from .tlsinfo import (
    CachedRun,
    RunFn,
    TlsLink,
    package_version,
    plain_run,
    resolve_tls_library,
    upstream_version,
    vendor_ldd_line,
)
from .versions import VersionInfo


def parse_mailutils_version(text: str) -> VersionInfo:
    """``mail.mailutils --version`` (the same text for ``-V``).

    >>> parse_mailutils_version("mail.mailutils (GNU Mailutils) 3.15\\nCopyright (C) 2007-2022")
    VersionInfo(version='3.15', library=None, library_version=None)
    """
    version = re.search(r"\(GNU Mailutils\)\s+(\S+)", text or "")
    return VersionInfo(version and version.group(1))


def parse_mailutils_config(text: str) -> str | None:
    """The library from ``mail.mailutils --show-config-options`` (mailutils only has GnuTLS).

    >>> parse_mailutils_config("VERSION=3.15\\nWITH_GNUTLS \\t- TLS support using GNU TLS\\n")
    'GnuTLS'
    >>> parse_mailutils_config("VERSION=3.15\\nWITH_GSASL\\n")
    'none'
    """
    if not re.search(r"^VERSION=", text or "", re.MULTILINE):
        return None
    return "GnuTLS" if re.search(r"^WITH_GNUTLS\b", text, re.MULTILINE) else "none"


_HEIRLOOM = re.compile(r"^\s*(\d+\.\d+)\s+\d+/\d+/\d+", re.MULTILINE)


def parse_heirloom_version(text: str) -> VersionInfo:
    """Heirloom ``mailx -V`` prints a version and a date only.

    >>> parse_heirloom_version("12.5 7/5/10")
    VersionInfo(version='12.5', library=None, library_version=None)
    """
    match = _HEIRLOOM.search(text or "")
    return VersionInfo(match.group(1) if match else None)


def parse_bsd_usage(text: str) -> bool:
    """bsd-mailx has no version option; ``-V`` makes it print its usage.

    >>> parse_bsd_usage("bsd-mailx: invalid option -- 'V'\\n"
    ...                 "usage: bsd-mailx [-dEIinv] [-a header] [-b bcc-addr] [-c cc-addr]")
    True
    """
    return re.search(r"^usage: \S+ \[-[dEIiNnv]+\]", text or "", re.MULTILINE) is not None


def identify_mailx(text: str) -> str | None:
    """Which mailx a ``mailx -V`` output belongs to: mailutils, heirloom, bsd or snail.

    >>> identify_mailx("mail (GNU Mailutils) 3.15"), identify_mailx("12.5 7/5/10")
    ('mailutils', 'heirloom')
    >>> identify_mailx("s-nail v14.9.24, 2022-03-26"), identify_mailx("mailx: not found")
    ('snail', None)
    """
    if parse_mailutils_version(text).version:
        return "mailutils"
    if parse_heirloom_version(text).version:
        return "heirloom"
    if parse_snail_version(text).version:
        return "snail"
    if parse_bsd_usage(text):
        return "bsd"
    return None


_LABELS = {
    "bsd": "BSD mailx",
    "mailutils": "GNU Mailutils mail",
    "heirloom": "Heirloom mailx",
    "snail": "s-nail",
}


def find_mailx(
    identity: str, names: Sequence[str], run_fn: RunFn
) -> tuple[str | None, str, list[str]]:
    """The first of ``names`` that is this mailx: (path, its -V output, what the other
    candidates turned out to be)."""
    seen: list[str] = []
    for name in names:
        path = which(name)
        if path is None:
            continue
        # Same file, same argv: mailx, mail and bsd-mailx share one call.
        out = run_fn([os.path.realpath(path), "-V"])
        found = identify_mailx(out.text)
        if found == identity:
            return path, out.text, seen
        seen.append(f"{name} is {_LABELS.get(found or '', 'unrecognised')}")
    return None, "", seen


def _aliases(path: str, names: Sequence[str]) -> list[str]:
    return [n for n in names if n != os.path.basename(path) and same_file(which(n), path)]


class MailxFamily(Transport):
    """What the three share: the binary is the first candidate that says it is this mailx."""

    identity: ClassVar[str]  # what identify_mailx() calls it

    def which(self) -> str | None:
        if self._executable:  # as given: Heirloom's syntax also runs on s-nail
            return locate((), self._executable)
        return find_mailx(self.identity, self.names(), plain_run)[0]

    @classmethod
    def detect(cls, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
        """An ``executable`` must still identify itself as this mailx."""
        run_fn = run_fn or CachedRun()
        det = Detection(key=cls.key, found=False)
        if executable and which(executable) is None:
            return missing(det, cls.names(), executable)
        names = [executable] if executable else cls.names()
        path, text, seen = find_mailx(cls.identity, names, run_fn)
        if path is None:
            if seen:
                msgid = gettext_noop("no %(mailx)s (%(seen)s)")
            else:
                msgid = gettext_noop("no %(mailx)s")
            det.add_note(Text(msgid, {"mailx": _LABELS[cls.identity], "seen": ", ".join(seen)}))
            return det
        det.found, det.path = True, path
        if aliases := _aliases(path, ("mailx", "mail")):
            det.add_note(Text(gettext_noop("also run as %(names)s"), {"names": ", ".join(aliases)}))
        det.ldd_ssl = vendor_ldd_line(path, run_fn)
        cls.read_tls(det, path, text, resolve_tls_library(path, run_fn), run_fn)
        return det

    @classmethod
    def read_tls(
        cls, det: Detection, path: str, version_text: str, link: TlsLink, run_fn: RunFn
    ) -> None:
        """Version and TLS library, from the -V output, the link and what else it tells."""
        raise NotImplementedError


class HeirloomMailx(MailxFamily, CommandTransport):
    key = "mailx-heirloom"
    identity = "heirloom"
    binary = "heirloom-mailx"
    candidates = ("mailx", "nail", "mail")
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

    @classmethod
    def read_tls(
        cls, det: Detection, path: str, version_text: str, link: TlsLink, run_fn: RunFn
    ) -> None:
        det.version = parse_heirloom_version(version_text).version
        apply_tls(det, link, VersionInfo(det.version))


class MailutilsMailx(MailxFamily, CommandTransport):
    key = "mailx-mailutils"
    identity = "mailutils"
    binary = "mail.mailutils"
    candidates = ("mailx", "mail")
    verifies_certificate = False  # measured: untrusted CA and wrong host name both delivered
    gnutls_log = True  # it names no TLS version itself
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

    @classmethod
    def read_tls(
        cls, det: Detection, path: str, version_text: str, link: TlsLink, run_fn: RunFn
    ) -> None:
        det.version = parse_mailutils_version(version_text).version
        config = run_fn([path, "--show-config-options"])
        claim = VersionInfo(det.version, parse_mailutils_config(config.stdout))
        source = f"{os.path.basename(path)} --show-config-options: WITH_GNUTLS"
        apply_tls(det, link, claim, source if claim.library == "GnuTLS" else None)


class BsdMailx(MailxFamily):
    """BSD mailx has no SMTP of its own: it passes every message to the local sendmail.

    So it can only be tested through a local relay, and only as honestly as that relay
    is followed: the message goes through bsd-mailx into the relay's queue and counts
    as sent once the relay has delivered it.
    """

    key = "mailx-bsd"
    identity = "bsd"
    reads_ca_file = False  # it hands over to the local relay
    binary = "bsd-mailx"
    candidates = ("mailx", "mail")

    def __init__(self, executable: str | None = None, relay: Relay | None = None) -> None:
        super().__init__(executable)
        self._relay = relay

    @classmethod
    def read_tls(
        cls, det: Detection, path: str, version_text: str, link: TlsLink, run_fn: RunFn
    ) -> None:
        # bsd-mailx has no version option; its package says which one it is.
        if owned := package_version(path, run_fn):
            det.version = upstream_version(owned[1])
            det.evidence.append(f"dpkg: {owned[0]} {owned[1]}")
        det.evidence.extend(link.evidence)
        det.without_tls()
        det.add_note(
            Text(
                gettext_noop(
                    "no SMTP and no TLS of its own: it only hands mail to the local "
                    "/usr/sbin/sendmail"
                )
            )
        )

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
