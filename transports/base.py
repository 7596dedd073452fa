"""The contract every mail command follows: what it is sent, what it reports.

A transport is a small class whose ``send()`` hands one message to an SMTP
target and says what happened, and whose ``detect()`` says whether the command
is on this machine and which TLS library it uses. The shared steps (finding and
running a process with a timeout, keeping the password out of argv, removing
secrets from transcripts, classifying failures) live here and in
``run``/``secrecy``/``classify``/``detection`` so a concrete transport stays short.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import socket
import ssl
import stat
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

from .detection import Detection, VersionArgs, VersionParser, detect_binary
from .run import locate
from .secrecy import redact
from .suggestions import Suggestion, suggest
from .texts import Text, gettext_noop
from .tlsinfo import RunFn
from .versions import VersionInfo

TRANSCRIPT_LIMIT = 20_000
SENT = Text(gettext_noop("sent"))
NOT_VERIFIED_BY_TOOL = Text(
    gettext_noop("the server certificate was not verified: this command does not check it")
)
NOT_VERIFIED_SWITCHED_OFF = Text(
    gettext_noop("the server certificate was not verified: the check is switched off")
)
# Control characters a tool may echo (a SASL debug line holds NULs); databases refuse NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def shorten(text: str, limit: int = TRANSCRIPT_LIMIT) -> str:
    """Keep the start and the end of a long transcript: the dialogue and the verdict."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-limit // 4 :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"


class Mode(enum.StrEnum):
    SMTPS = "smtps"  # implicit TLS from the first byte
    STARTTLS = "starttls"

    @classmethod
    def for_port(cls, port: int) -> Mode:
        """The vendor's rule: 465 is implicit TLS, every other port STARTTLS."""
        return cls.SMTPS if port == 465 else cls.STARTTLS


class Step(enum.StrEnum):
    """Where a send stopped; ``DONE`` when it went through."""

    CONNECT = "connect"
    TLS = "tls"
    EHLO = "ehlo"
    AUTH = "auth"
    MAIL_FROM = "mail_from"
    RCPT_TO = "rcpt_to"
    DATA = "data"
    QUEUE = "queue"
    TIMEOUT = "timeout"
    UNSUPPORTED = "unsupported"
    CONFIG = "config"  # bad input or a tool that is missing: nothing was tried
    UNKNOWN = "unknown"
    DONE = "done"


# A host is a DNS name (ASCII after IDNA), an IPv4 or an IPv6 address; nothing
# else ever reaches a command line or a config file we write.
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$")
# Syntax in a shell, an rc file (mutt runs backticks through /bin/sh) or a config
# format. Refused in every value but the password, so that no tool's quoting rule
# can be got wrong; the password is quoted per format and may hold any of them.
SHELL_CHARS = frozenset(";|&$`<>\\\"'(){}[]*?!~#")
CA_FILE_MAX_BYTES = 10 * 1024 * 1024


# Steps where a refusal is about the message (its sender, a recipient, its content), not
# the way to the server: another mail command would get the same answer.
MESSAGE_STEPS = frozenset({Step.MAIL_FROM, Step.RCPT_TO, Step.DATA})
# An SMTP reply code as tools quote it: "550 5.1.1 ...", "550-...", "(450)", "<<< 550".
_REPLY_CODE = re.compile(r"(?<![\w.:/-])([45])\d\d(?=[ -]|\)|$)", re.M)


class TargetError(ValueError):
    """The target is not safe or not complete enough to try; ``text`` says why."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def invisible_char(value: str) -> str | None:
    """The first control or format character (line breaks, NUL, zero-width, bidi)."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf"):
            return char
    return None


def config_value(value: str) -> str:
    """Every value written into a tool's rc or config file: a line break would end
    the value and start a setting of the attacker's (the last line of defence; Target
    refuses these already)."""
    if (char := invisible_char(value)) is not None:
        raise TargetError(
            Text(
                gettext_noop("a control character (%(char)s) cannot go into a config file"),
                {"char": _code_point(char)},
            )
        )
    return value


def check_plain(name: Text, value: str) -> str:
    """A value written into argv or a tool's config file: printable, no blank, no syntax.
    ``name`` names the value in the sentence that refuses it."""
    if (char := invisible_char(value)) is not None:
        if char in "\r\n\0":
            msgid = gettext_noop("%(name)s contains a line break or NUL (%(char)s)")
        else:
            msgid = gettext_noop("%(name)s contains a control character (%(char)s)")
        raise TargetError(Text(msgid, {"name": name, "char": _code_point(char)}))
    if any(c.isspace() for c in value):
        raise TargetError(Text(gettext_noop("%(name)s contains a blank"), {"name": name}))
    if bad := sorted({c for c in value if c in SHELL_CHARS}):
        raise TargetError(
            Text(
                gettext_noop("%(name)s contains the special character %(char)s"),
                {"name": name, "char": repr(bad[0])},
            )
        )
    return value


def _bad_host(host: str) -> TargetError:
    return TargetError(Text(gettext_noop("not a valid host name: %(host)s"), {"host": repr(host)}))


def normalise_host(host: str) -> str:
    """Return the host in the form tools accept (IDN as punycode) or raise."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    # IDNA would silently drop a zero-width character; a bidi mark disguises the name.
    if invisible_char(host) is not None:
        raise _bad_host(host)
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _legacy_ipv4(host):
        # 2130706433, 0x7f000001 and 127.1 all mean 127.0.0.1 to some tools and a host
        # name to others: one spelling, so every command connects to the same place.
        raise TargetError(
            Text(
                gettext_noop("write the IPv4 address in dotted form (a.b.c.d): %(host)s"),
                {"host": repr(host)},
            )
        )
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise _bad_host(host) from exc
    ascii_host = ascii_host.rstrip(".")
    labels = ascii_host.split(".")
    if not ascii_host or len(ascii_host) > 253 or not all(_HOST_LABEL.match(x) for x in labels):
        raise _bad_host(host)
    return ascii_host.lower()


def _legacy_ipv4(host: str) -> bool:
    """inet_aton's forms (decimal, hex, octal, fewer than four parts) that are no
    dotted quad; a name whose last label is all digits is one of them too."""
    try:
        socket.inet_aton(host)
    except OSError:
        return host.rstrip(".").rsplit(".", 1)[-1].isdigit()
    return True


def check_server(host: str, port: int, mode: Mode | str | None) -> tuple[str, Mode]:
    """Host in the form tools accept, and the mode (from the port when not given)."""
    host = normalise_host(host)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise TargetError(
            Text(gettext_noop("port out of range 1-65535: %(port)s"), {"port": repr(port)})
        )
    return host, Mode.for_port(port) if mode is None else Mode(mode)


def check_credentials(user: str, password: str) -> None:
    if not user or len(user) > 254:
        raise TargetError(Text(gettext_noop("user is empty or too long")))
    check_plain(Text(gettext_noop("user")), user)
    if invisible_char(password) is not None:
        raise TargetError(
            Text(gettext_noop("password contains a line break or another control character"))
        )


def check_address(address: str) -> str:
    if len(address) > 254 or not _ADDRESS.match(address):
        raise TargetError(
            Text(gettext_noop("not a valid mail address: %(address)s"), {"address": repr(address)})
        )
    return check_plain(Text(gettext_noop("mail address")), address)


def ascii_address(address: str) -> str:
    """The address as every mail command and server here takes it: an internationalised
    domain in its A-label form ("xn--..."; IDNA 2008, so a sharp s stays one, as DENIC
    has it, where IDNA 2003 made it "ss"). A local part beyond ASCII needs SMTPUTF8 all
    along the way, which none of the mail commands offers: TargetError, so the message
    bounces with that reason instead of failing command after command."""
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise TargetError(
            Text(
                gettext_noop(
                    "%(address)s: a mailbox name beyond ASCII needs SMTPUTF8, which no mail "
                    "command on this server offers; ask for an ASCII address"
                ),
                {"address": address},
            )
        )
    import idna  # only for the rare address that needs it

    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError as exc:
        raise TargetError(
            Text(
                gettext_noop("%(address)s: not a valid international domain (%(error)s)"),
                {"address": address, "error": str(exc)},
            )
        ) from None


def check_ca_file(path: str) -> str:
    """The CA file's name as it may go into a tool's config: absolute and plain."""
    check_plain(Text(gettext_noop("CA file")), path)
    if not path.startswith("/") or len(path) > 1024:
        raise TargetError(
            Text(gettext_noop("CA file must be an absolute path: %(path)s"), {"path": repr(path)})
        )
    return path


def ca_file_problem(path: str) -> Text | None:
    """Why ``path`` cannot serve as a CA file, or None. One sentence for a missing,
    unreadable or wrong file, so the answer never tells which files exist."""
    unusable = Text(
        gettext_noop("the CA file %(path)s holds no usable certificate"), {"path": path}
    )
    try:
        check_ca_file(path)
        # Non-blocking: a FIFO named as CA file must not hang the send.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY), "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > CA_FILE_MAX_BYTES:
                return unusable
            data = fh.read(CA_FILE_MAX_BYTES + 1)
    except (OSError, TargetError):
        return unusable
    # A file that also holds a private key (the server's own, the product's) is no CA file.
    if b"-----BEGIN CERTIFICATE-----" not in data or b"PRIVATE KEY-----" in data:
        return unusable
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, ValueError, UnicodeDecodeError):
        return unusable
    return None


@dataclass(frozen=True)
class Target:
    """One SMTP account as a mail command needs it."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    sender: str
    recipient: str
    mode: Mode | None = None  # None: derived from the port
    ca_file: str | None = None
    verify: bool = True  # False: the account switched the certificate check off (warned)
    timeout: float = 30.0
    helo: str = "xmailadmin.localdomain"

    def __post_init__(self) -> None:
        host, mode = check_server(self.host, self.port, self.mode)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "mode", mode)
        check_address(self.sender)
        check_address(self.recipient)
        check_credentials(self.user, self.password)
        if self.ca_file is not None:
            check_ca_file(self.ca_file)
        if not 0 < self.timeout <= 3600:
            raise TargetError(Text(gettext_noop("timeout must be between 0 and 3600 seconds")))

    @property
    def implicit_tls(self) -> bool:
        return self.mode is Mode.SMTPS

    @property
    def url_host(self) -> str:
        """Host as it goes into a URL: IPv6 in brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host


@dataclass
class SendResult:
    ok: bool
    step: Step
    reason: Text
    command: str = ""
    exit_code: int | None = None
    transcript: str = ""
    duration_s: float = 0.0
    tls_version: str | None = None
    verified: bool = True  # False: the tool did not check the server certificate
    delivered: bool | None = None  # None: the tool talks SMTP itself, delivery is the 250
    warnings: list[Text] = field(default_factory=list)
    detail: str = ""  # the tool's own words for the failure
    # A stable name of the reason for translations: a Step value, tls_hostname,
    # tls_untrusted, tls_version, tls_mode, not_installed, queued_unverified, ...
    reason_code: str = ""
    # What to do about a failure, and the action the panel may offer (suggestions.py).
    suggestion: Text | None = None
    action: str = ""

    @property
    def permanent(self) -> bool:
        """The server refused the message itself with a 5xx reply (RFC 5321 4.2.1):
        sending it again, or through another command, gets the same answer. A 4xx reply
        is a "try again later"; a refusal without a readable code counts as temporary,
        so a message is retried rather than bounced on a guess."""
        if self.ok or self.step not in MESSAGE_STEPS:
            return False
        for text in (self.detail, str(self.reason)):
            if codes := _REPLY_CODE.findall(text):
                return codes[-1] == "5"
        return False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the sentences in English, and as data (``reason_text``,
        ``warning_texts``: message id and parameters, for a reader of another language)."""
        data = asdict(self)
        data["step"] = self.step.value
        data["reason"] = str(self.reason)
        data["reason_text"] = self.reason.to_dict()
        data["warnings"] = [str(w) for w in self.warnings]
        data["warning_texts"] = [w.to_dict() for w in self.warnings]
        data["suggestion"] = str(self.suggestion) if self.suggestion else None
        data["suggestion_text"] = self.suggestion.to_dict() if self.suggestion else None
        return data


def suggest_for(result: SendResult, target: Target, issuer: str = "") -> Suggestion | None:
    """What to do about ``result``, with the target's values."""
    return suggest(
        result.reason_code, f"{result.detail} {result.reason}", host=target.host,
        port=target.port, user=target.user, sender=target.sender,
        implicit_tls=target.implicit_tls, issuer=issuer,
    )  # fmt: skip


def invalid_recipient(exc: TargetError) -> SendResult:
    """The result of a message whose recipient no Target takes: nothing was tried."""
    return SendResult(ok=False, step=Step.CONFIG, reason=exc.text)


_TLS_NAME = re.compile(r"(TLS|SSL)v?(\d(?:\.\d)?)")


def tls_name(raw: str | None) -> str | None:
    """Tools spell it TLS1.3, TLSv1.3 or TLSv1_3; the product says TLSv1.3."""
    match = _TLS_NAME.search(raw.replace("_", ".")) if raw else None
    return f"{match.group(1)}v{match.group(2)}" if match else None


def _no_version(text: str) -> VersionInfo:
    return VersionInfo()


class Transport:
    """Base for one mail command. Subclasses set ``key`` and implement the two jobs."""

    key: ClassVar[str]
    binary: ClassVar[str] = ""
    candidates: ClassVar[tuple[str, ...]] = ()  # other names or paths, e.g. in /usr/sbin
    # Tools that never check the server certificate cannot report a clean pass.
    verifies_certificate: ClassVar[bool] = True
    # Headers the tool is known to rewrite: shown on every pass as a warning.
    rewrites: ClassVar[Text | None] = None
    # Whether it can be told to skip the certificate check (mutt cannot, in batch mode).
    can_skip_verification: ClassVar[bool] = True
    # False for the local relays: they read the CA file they were configured with, which
    # apply() checked; the account's may have changed since without touching them.
    reads_ca_file: ClassVar[bool] = True
    # Whether send_many() carries many messages over one connection (one TLS handshake,
    # one AUTH), so that grouping messages for it pays; False: it sends them one by one.
    carries_many: ClassVar[bool] = False

    # How the default detect() asks the command about itself: the version commands, tried
    # in order until one answers, and the reader of their output.
    version_args: ClassVar[VersionArgs] = ()
    parse_version: ClassVar[VersionParser] = staticmethod(_no_version)

    def __init__(self, executable: str | None = None) -> None:
        self._executable = executable

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The names the command is looked up by, in order."""
        return (cls.binary, *cls.candidates)

    @classmethod
    def detect(cls, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
        """Whether the command is on this server and which TLS library it really uses.

        ``executable`` replaces the lookup of :meth:`names`. The default runs the
        ``version_args`` and reads them with ``parse_version``; commands whose TLS sits
        elsewhere (a module, a daemon) override it.
        """
        return detect_binary(
            cls.key, cls.names(), cls.version_args, cls.parse_version, executable, run_fn
        )

    def which(self) -> str | None:
        """The binary a send runs: found the way :meth:`detect` finds it."""
        return locate(self.names(), self._executable)

    def other_variant(self, exe: str) -> Text | None:
        """Why ``exe`` belongs to another catalogue row (s-nail 14 vs 15), or None.
        A row sends only through the binary detection gives that row."""
        return None

    def send(self, target: Target, message: bytes) -> SendResult:
        start = time.monotonic()
        exe, result = self._ready(target)
        if result is None:
            try:
                result = self._send(exe, target, message)
            except TargetError as exc:  # a value that the tool's config format cannot hold
                result = SendResult(ok=False, step=Step.CONFIG, reason=exc.text)
        return self._finished(result, target, time.monotonic() - start)

    def send_many(self, target: Target, items: Sequence[tuple[str, bytes]]) -> list[SendResult]:
        """One result per (recipient, message), in order: ``target`` with each recipient.

        The default sends them one by one; a transport whose command can carry many
        messages over one connection overrides it (and sets ``carries_many``).
        """
        return [
            each if isinstance(each, SendResult) else self.send(*each)
            for each in self._per_item(target, items)
        ]

    def _per_item(
        self, target: Target, items: Sequence[tuple[str, bytes]]
    ) -> list[tuple[Target, bytes] | SendResult]:
        """Each item's target and message, or the result of an item whose recipient no
        Target takes: that message's fault, not the batch's."""
        found: list[tuple[Target, bytes] | SendResult] = []
        for recipient, message in items:
            try:
                found.append((replace(target, recipient=recipient), message))
            except TargetError as exc:
                found.append(self._finished(invalid_recipient(exc), target, 0.0))
        return found

    def _ready(self, target: Target) -> tuple[str, None] | tuple[None, SendResult]:
        """The binary to run, or the result that says why nothing can be tried."""
        exe = self.which()
        other = self.other_variant(exe) if exe is not None else None
        if exe is None or other is not None:
            command = self.binary or self.key
            if other is None:
                reason = Text(
                    gettext_noop("%(command)s is not installed on this server"),
                    {"command": command},
                )
            else:
                reason = Text(
                    gettext_noop("%(command)s is not installed on this server (%(why)s)"),
                    {"command": command, "why": other},
                )
            return None, SendResult(
                ok=False, step=Step.UNSUPPORTED, reason=reason, reason_code="not_installed"
            )
        # Checked again at send time: the file may have changed since it was saved.
        if self.reads_ca_file and target.ca_file and (problem := ca_file_problem(target.ca_file)):
            return None, SendResult(
                ok=False, step=Step.CONFIG, reason=problem, reason_code="ca_file_unusable"
            )
        return exe, None

    def _finished(self, result: SendResult, target: Target, duration_s: float) -> SendResult:
        """The result as every send reports it: timed, named, without secrets, shortened,
        and warned where the certificate went unchecked."""
        result.duration_s = round(duration_s, 3)
        result.command = self.key
        result.reason_code = result.reason_code or result.step.value

        # One place removes secrets, so no transport can forget to.
        def clean(text: str) -> str:
            return shorten(_CONTROL.sub("", redact(text, target.user, target.password)))

        result.transcript, result.detail = clean(result.transcript), clean(result.detail)
        result.reason = result.reason.map(clean)
        result.warnings = [w.map(clean) for w in result.warnings]
        if result.ok and not self.verifies_certificate:
            result.verified = False
            result.warnings.append(NOT_VERIFIED_BY_TOOL)
        elif result.ok and not target.verify and self.can_skip_verification:
            result.verified = False
            result.warnings.append(NOT_VERIFIED_SWITCHED_OFF)
        if result.ok and self.rewrites:
            result.warnings.append(self.rewrites)
        if not result.ok and (found := suggest_for(result, target)) is not None:
            result.suggestion, result.action = found.text, found.action
        return result

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        raise NotImplementedError
