"""The mail commands under test, and targets on the loopback test server."""

from __future__ import annotations

import glob
import shutil
import subprocess
from dataclasses import dataclass

import pytest
from smtp_server import SmtpTestServer

from transports.base import Mode, Target
from transports.catalogue import transport_for

SENDER = "absender@example.org"
RECIPIENT = "empfaenger@example.net"


def python2() -> str | None:
    """A Python 2.7 as older servers have it (pyenv keeps one here, not on PATH)."""
    candidates = [
        *sorted(glob.glob("/root/.pyenv/versions/2.7*/bin/python2.7")),
        shutil.which("python2.7"),
        shutil.which("python2"),
    ]
    for candidate in filter(None, candidates):
        # A pyenv shim is on PATH even when it cannot run that version.
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


@dataclass(frozen=True)
class Command:
    """One way to run a transport: its key and, for stand-ins, an executable."""

    id: str
    key: str
    executable: str | None = None
    binary: str = ""  # what must be installed; skip with the reason otherwise

    def transport(self):
        return transport_for(self.key, self.executable)

    def require(self) -> None:
        needed = self.executable or self.binary or transport_for(self.key).binary
        if not needed or not shutil.which(needed):
            pytest.skip(f"{self.id}: {needed or 'interpreter'} is not installed (CI installs it)")


# The commands that talk SMTP themselves. mailx-heirloom runs on s-nail, which
# still understands Heirloom's variables (Heirloom mailx left Debian with 10).
SMTP_COMMANDS = [
    Command("python3", "python3"),
    Command("python2.7", "python", python2() or "python2.7"),
    Command("perl", "perl"),
    Command("curl", "curl"),
    Command("msmtp", "msmtp"),
    Command("openssl", "openssl"),
    Command("s-nail", "snail14"),
    Command("mutt", "mutt"),
    Command("mailutils", "mailx-mailutils"),
    Command("heirloom-syntax-on-s-nail", "mailx-heirloom", "s-nail"),
]
VERBATIM = {"python3", "python2.7", "perl", "curl", "msmtp", "openssl"}
UNVERIFIED = {"mailutils"}  # never checks the server certificate


def make_target(server: SmtpTestServer, mode: Mode, **overrides) -> Target:
    port = server.smtps_port if mode is Mode.SMTPS else server.starttls_port
    values = {
        "host": "localhost",
        "port": port,
        "mode": mode,
        "user": server.user,
        "password": server.password,
        "sender": SENDER,
        "recipient": RECIPIENT,
        "ca_file": str(server.ca_file),
        "timeout": 20.0,
    }
    values.update(overrides)
    return Target(**values)


def plain_target(port: int, timeout: float) -> Target:
    """A target on 127.0.0.1 where no SMTP server answers properly."""
    return Target(
        host="127.0.0.1",
        port=port,
        user="tester",
        password="S3cret-T3st-pw!",
        sender=SENDER,
        recipient=RECIPIENT,
        timeout=timeout,
    )
