"""What the server check's connections know and saw: the deadline they share, the
target as they use it, what the main dialogue saw and the other connections' answers.
Made by server_check.py's connections, judged by server_findings.py."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

from .base import Mode
from .findings import Finding


class Clock:
    """One deadline: every connect, read and handshake gets what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the check's time is up")
        return left if cap is None else min(left, cap)


@dataclass(frozen=True)
class CheckTarget:
    host: str
    port: int
    mode: Mode
    clock: Clock
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def sni(self) -> str | None:
        # An IP literal must not go into SNI (RFC 6066).
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return self.host
        return None

    @property
    def where(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port}

    @property
    def seconds(self) -> str:
        """The check's timeout as the sentences say it."""
        return f"{self.clock.seconds:g}"


@dataclass
class Seen:
    """What the main connection saw, filled in as the dialogue goes."""

    step: str = "connect"
    connect_ms: float | None = None
    banner: str | None = None
    starttls: bool | None = None
    before_tls: list[str] | None = None
    after_tls: list[str] | None = None
    tls_version: str | None = None
    chain: list[bytes] = field(default_factory=list)
    login: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    shown_mode: Mode | None = None  # the server spoke the other mode
    confirmed: bool = False  # the server behaved as the mode expects
    cancelled: bool = False


@dataclass
class Run:
    seen: Seen
    versions: dict[str, bool | None]
    trust: dict[str, tuple[bool | None, str | None]]  # store -> (verified, OpenSSL's words)
