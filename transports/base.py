"""The contract every mail command follows: what it is sent, what it reports.

A transport is a small class with two jobs: ``detect()`` says whether the
command is on this machine and which TLS library it uses, ``send()`` hands
one message to an SMTP target and says what happened. The shared steps
(running a process with a timeout, keeping the password out of argv,
removing secrets from transcripts, classifying failures) live here and in
``run``/``secrecy``/``classify`` so a concrete transport stays short.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from .run import RunOutput
from .secrecy import redact

TRANSCRIPT_LIMIT = 20_000
NOT_VERIFIED_BY_TOOL = "the server certificate was not verified: this command does not check it"
NOT_VERIFIED_SWITCHED_OFF = "the server certificate was not verified: the check is switched off"
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


class TargetError(ValueError):
    """The target is not safe or not complete enough to try."""


def normalise_host(host: str) -> str:
    """Return the host in the form tools accept (IDN as punycode) or raise."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise TargetError(f"not a valid host name: {host!r}") from exc
    ascii_host = ascii_host.rstrip(".")
    labels = ascii_host.split(".")
    if not ascii_host or len(ascii_host) > 253 or not all(_HOST_LABEL.match(x) for x in labels):
        raise TargetError(f"not a valid host name: {host!r}")
    return ascii_host.lower()


def check_server(host: str, port: int, mode: Mode | str | None) -> tuple[str, Mode]:
    """Host in the form tools accept, and the mode (from the port when not given)."""
    host = normalise_host(host)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise TargetError(f"port out of range 1-65535: {port!r}")
    return host, Mode.for_port(port) if mode is None else Mode(mode)


def check_credentials(user: str, password: str) -> None:
    for name, value in (("user", user), ("password", password)):
        if any(c in value for c in "\r\n\0"):
            raise TargetError(f"{name} contains a line break or NUL")
    if not user or len(user) > 254:
        raise TargetError("user is empty or too long")


def check_address(address: str) -> str:
    if len(address) > 254 or not _ADDRESS.match(address):
        raise TargetError(f"not a valid mail address: {address!r}")
    return address


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
        if not 0 < self.timeout <= 3600:
            raise TargetError("timeout must be between 0 and 3600 seconds")

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
    reason: str
    command: str = ""
    exit_code: int | None = None
    transcript: str = ""
    duration_s: float = 0.0
    tls_version: str | None = None
    verified: bool = True  # False: the tool did not check the server certificate
    delivered: bool | None = None  # None: the tool talks SMTP itself, delivery is the 250
    warnings: list[str] = field(default_factory=list)
    detail: str = ""  # the tool's own words for the failure
    # A stable name of the reason for translations: a Step value, tls_hostname,
    # tls_untrusted, tls_version, tls_mode, not_installed, queued_unverified, ...
    reason_code: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["step"] = self.step.value
        return data


@dataclass
class Detection:
    key: str
    found: bool
    path: str | None = None
    version: str | None = None
    tls_library: str | None = None  # "OpenSSL", "GnuTLS", "none", "unknown"
    tls_library_version: str | None = None
    tls12: str = "unknown"  # yes / partly / no / unknown
    tls13: str = "unknown"
    evidence: list[str] = field(default_factory=list)  # how the library was found
    ldd_ssl: str = ""  # the vendor's `ldd $(which CMD) | grep ssl`, for comparison
    note: str = ""
    usable: bool = True  # found but missing something the send needs (e.g. a Perl module)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Transport:
    """Base for one mail command. Subclasses set ``key`` and implement the two jobs."""

    key: ClassVar[str]
    binary: ClassVar[str] = ""
    candidates: ClassVar[tuple[str, ...]] = ()  # other names or paths, e.g. in /usr/sbin
    # Tools that never check the server certificate cannot report a clean pass.
    verifies_certificate: ClassVar[bool] = True
    # Headers the tool is known to rewrite: shown on every pass as a warning.
    rewrites: ClassVar[str] = ""
    # Whether it can be told to skip the certificate check (mutt cannot, in batch mode).
    can_skip_verification: ClassVar[bool] = True

    def __init__(self, executable: str | None = None) -> None:
        self._executable = executable

    def which(self) -> str | None:
        names = (self._executable,) if self._executable else (self.binary, *self.candidates)
        for name in names:
            if name and (path := shutil.which(name)):
                return path
        return None

    def detect(self) -> Detection:
        from .detection import detect  # detection runs many tools; load it only when asked

        return detect(self.key, self._executable)

    def send(self, target: Target, message: bytes) -> SendResult:
        start = time.monotonic()
        exe = self.which()
        if exe is None:
            result = SendResult(
                ok=False,
                step=Step.UNSUPPORTED,
                reason=f"{self.binary or self.key} is not installed on this server",
                reason_code="not_installed",
            )
        else:
            result = self._send(exe, target, message)
        result.duration_s = round(time.monotonic() - start, 3)
        result.command = self.key
        result.reason_code = result.reason_code or result.step.value
        # One place removes secrets, so no transport can forget to.
        for name in ("transcript", "reason", "detail"):
            text = redact(getattr(result, name), target.user, target.password)
            setattr(result, name, shorten(_CONTROL.sub("", text)))
        if result.ok and not self.verifies_certificate:
            result.verified = False
            result.warnings.append(NOT_VERIFIED_BY_TOOL)
        elif result.ok and not target.verify and self.can_skip_verification:
            result.verified = False
            result.warnings.append(NOT_VERIFIED_SWITCHED_OFF)
        if result.ok and self.rewrites:
            result.warnings.append(self.rewrites)
        return result

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        raise NotImplementedError


def timed_out(out: RunOutput, target: Target) -> SendResult:
    return SendResult(
        ok=False,
        step=Step.TIMEOUT,
        reason=(
            f"no answer within {target.timeout:g} s; the command was stopped. "
            "Check host, port and mode (465 = implicit TLS, others STARTTLS)."
        ),
        exit_code=out.returncode,
    )
