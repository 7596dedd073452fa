"""What the relay code reads, compares, writes and reports, as plain data.

The panel shows these; nothing here runs a command. The only secret is the
account's password: it lives in :class:`RelayAccount` and, once rendered, in
exactly one :class:`ConfigFile` flagged ``secret``, which the panel masks.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..base import (
    Detection,
    Mode,
    SendResult,
    Target,
    TargetError,
    check_ca_file,
    check_credentials,
    check_server,
    normalise_host,
)
from ..secrecy import MASK
from ..texts import Text, gettext_noop

if TYPE_CHECKING:
    from .follow import Queue

# Debian's bundle of the CAs the system trusts: the default when the account names none.
SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"

# A path that goes into main.cf or an exim macro: absolute, no blanks or control
# characters that would end the value or start a new setting.
_CONFIG_PATH = re.compile(r"^/[^\s\x00-\x1f\"'\\$]*$")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class RelayAccount:
    """The SMTP account a relay forwards to: what its configuration must say."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    mode: Mode | None = None  # None: derived from the port (465 = implicit TLS)
    ca_file: str | None = None  # None: the system's trusted CAs
    # The name the server certificate must carry. Postfix matches names only, never an
    # IP address, so a relay given as an IP needs it for a verified connection.
    tls_name: str | None = None

    def __post_init__(self) -> None:
        host, mode = check_server(self.host, self.port, self.mode)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "mode", mode)
        check_credentials(self.user, self.password)
        # Both password files split "user:password" at the first colon and trim blanks.
        if ":" in self.user or any(c.isspace() for c in self.user):
            raise TargetError(
                Text(
                    gettext_noop("user must not contain ':' or blanks: the relay files split there")
                )
            )
        if not self.password or self.password != self.password.strip():
            raise TargetError(
                Text(gettext_noop("password is empty or starts or ends with a blank"))
            )
        if self.ca_file is not None:
            if not _CONFIG_PATH.match(self.ca_file):
                raise TargetError(
                    Text(
                        gettext_noop("CA file must be an absolute path without blanks: %(path)s"),
                        {"path": repr(self.ca_file)},
                    )
                )
            check_ca_file(self.ca_file)
        if self.tls_name is not None:
            name = normalise_host(self.tls_name)
            if _is_ip(name):
                raise TargetError(
                    Text(gettext_noop("tls_name must be a host name, not an address"))
                )
            object.__setattr__(self, "tls_name", name)

    @property
    def implicit_tls(self) -> bool:
        return self.mode is Mode.SMTPS

    @property
    def certificate_name(self) -> str | None:
        """The name to check the certificate against; None for a bare IP address."""
        if self.tls_name:
            return self.tls_name
        return None if _is_ip(self.host) else self.host

    @property
    def mode_mismatch(self) -> bool:
        return self.mode is not Mode.for_port(self.port)


# One key per process: a digest lets compare() tell "same password" without the
# status ever holding the password, and is worthless outside this process.
_DIGEST_KEY = os.urandom(32)


def secret_digest(value: str) -> str:
    return hmac.new(_DIGEST_KEY, value.encode(), hashlib.sha256).hexdigest()


@dataclass
class RelayStatus:
    """What the relay is and how it is configured, as read from the machine."""

    mta: str  # "postfix" or "exim"
    installed: bool
    running: bool | None = None  # None: could not tell (no rights)
    version: str | None = None
    tls_library: str | None = None
    tls_library_version: str | None = None
    tls12: str = "unknown"
    tls13: str = "unknown"
    config_path: str | None = None
    configured: bool = False  # a configuration file exists
    log_path: str | None = None
    # The effective values that matter, name -> value, in a stable order.
    settings: dict[str, str] = field(default_factory=dict)
    notes: list[Text] = field(default_factory=list)
    # Digest of the stored password (secret_digest); never shown, never serialised.
    password_digest: str | None = field(default=None, repr=False)

    def take_tls(self, detection: Detection) -> None:
        """The TLS library and verdicts that detection found for the relay's binary."""
        self.tls_library, self.tls_library_version = (
            detection.tls_library,
            detection.tls_library_version,
        )
        self.tls12, self.tls13 = detection.tls12, detection.tls13

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["password_digest"]
        data["notes"] = [n.to_dict() for n in self.notes]
        return data


@dataclass(frozen=True)
class Difference:
    """One way the relay's configuration differs from the account, and what to do."""

    setting: str
    current: str
    wanted: str
    text: Text

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "current": self.current,
            "wanted": self.wanted,
            "text": self.text.to_dict(),
        }


@dataclass(frozen=True)
class ConfigFile:
    """A file the configuration needs. ``merge`` says how it joins an existing file."""

    path: str
    content: str = field(repr=False)
    mode: int = 0o644
    secret: bool = False  # holds the password: the panel shows it masked
    group: str | None = None  # e.g. Debian-exim must read exim's passwd.client
    # "lines": replace the lines whose first field is a key of ours, keep the others;
    # "block": replace our marked block, keep the rest; "assignments": NAME='value' lines.
    merge: str = "lines"

    def shown(self, password: str) -> str:
        """The content as the panel may show it: the password masked."""
        return self.content.replace(password, MASK) if self.secret and password else self.content


@dataclass
class GeneratedConfig:
    """The exact configuration for one account, for copying or for apply()."""

    mta: str
    settings_path: str  # main.cf or update-exim4.conf.conf
    settings: dict[str, str]
    files: list[ConfigFile]
    commands: list[str]  # what to run afterwards, in order, as an administrator would
    notes: list[Text] = field(default_factory=list)

    def text(self, password: str = "") -> str:
        """Everything in copyable form; with ``password`` given, that password is masked."""
        parts = [f"# {self.settings_path}"]
        parts += [self._setting_line(k, v) for k, v in self.settings.items()]
        for f in self.files:
            mode = f"mode {f.mode:04o}" + (f", group {f.group}" if f.group else "")
            parts += ["", f"# {f.path} ({mode})", f.shown(password).rstrip("\n")]
        parts += ["", "# then run:", *self.commands]
        parts += [f"# note: {n}" for n in self.notes]
        return "\n".join(parts) + "\n"

    def _setting_line(self, name: str, value: str) -> str:
        return f"{name}='{value}'" if self.mta == "exim" else f"{name} = {value}"

    def to_dict(self, password: str = "") -> dict[str, Any]:
        """JSON-ready, secrets masked (pass the account's password to mask it)."""
        return {
            "mta": self.mta,
            "settings_path": self.settings_path,
            "settings": dict(self.settings),
            "files": [
                {
                    "path": f.path,
                    "content": f.shown(password),
                    "mode": f"{f.mode:04o}",
                    "secret": f.secret,
                    "group": f.group,
                }
                for f in self.files
            ],
            "commands": list(self.commands),
            "notes": [n.to_dict() for n in self.notes],
        }


@dataclass
class ApplyResult:
    ok: bool
    reason: Text
    written: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    rolled_back: bool = False
    action: str = ""  # "reloaded", "started", "not running" ...
    output: str = ""  # what the check and reload said

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reason"] = self.reason.to_dict()
        return data


class Relay(Protocol):
    """A relay server (postfix or exim): the one type the transports and the panel use.

    ``queue()`` hands out the relay's queue (:class:`~transports.relay.follow.Queue`):
    the sendmail command, its environment and the reading of log and queue.
    ``test_send`` and ``hand_over`` are that queue's, for callers holding the relay.
    """

    mta: str  # "postfix" or "exim": its name, in the panel's words and in results

    def status(self) -> RelayStatus: ...

    def compare(self, status: RelayStatus, account: RelayAccount) -> list[Difference]: ...

    def render(self, account: RelayAccount) -> GeneratedConfig: ...

    def apply(self, account: RelayAccount, *, confirm: bool = False) -> ApplyResult: ...

    def ready(self) -> tuple[bool, Text]:
        """Whether a message handed over now can be followed to delivery, and why."""
        ...

    def sendmail_path(self) -> str:
        """The relay's sendmail binary."""
        ...

    def plain_sendmail(self) -> str | None:
        """The sendmail any program can call to reach this relay (with ``handover_env()``);
        None when the relay needs options a plain sendmail call cannot pass."""
        ...

    def queue(self) -> Queue: ...

    def handover_env(self) -> dict[str, str]:
        """What a program that calls this relay's sendmail needs in its environment."""
        ...

    def test_send(
        self, target: Target, message: bytes, timeout: float | None = None
    ) -> SendResult: ...

    def hand_over(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes,
        env: Mapping[str, str],
        target: Target,
        message_id: str,
        timeout: float | None = None,
    ) -> SendResult: ...


class RelayBase:
    """What postfix and exim implement alike by handing on: apply() is render() then
    apply_config(), and a test send goes through the relay's queue()."""

    mta = ""

    def render(self, account: RelayAccount) -> GeneratedConfig:
        raise NotImplementedError

    def apply_config(
        self, config: GeneratedConfig, *, confirm: bool = False, ca_file: str | None = None
    ) -> ApplyResult:
        raise NotImplementedError

    def queue(self) -> Queue:
        raise NotImplementedError

    def apply(self, account: RelayAccount, *, confirm: bool = False) -> ApplyResult:
        return self.apply_config(self.render(account), confirm=confirm, ca_file=account.ca_file)

    def test_send(self, target: Target, message: bytes, timeout: float | None = None) -> SendResult:
        return self.queue().test_send(target, message, timeout)

    def hand_over(self, argv: Sequence[str], **handing: Any) -> SendResult:
        """``Queue.hand_over`` of this relay's queue (the keywords as in :class:`Relay`)."""
        return self.queue().hand_over(argv, **handing)
