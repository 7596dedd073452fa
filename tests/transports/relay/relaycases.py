"""Accounts, targets and messages for the relay tests, on the loopback test server."""

from __future__ import annotations

import os
from pathlib import Path

from smtp_server import SmtpTestServer

from transports.base import Mode, SendResult, Target
from transports.message import build_test_message
from transports.relay import RelayAccount

SENDER = "absender@example.org"
RECIPIENT = "empfaenger@example.net"
# Long enough for a loopback delivery (about 0.2 s), short enough that a failure the
# relay does not report in time ends the test soon.
LIMIT = 20.0
MODES = [Mode.SMTPS, Mode.STARTTLS]


def port_for(server: SmtpTestServer, mode: Mode) -> int:
    return server.smtps_port if mode is Mode.SMTPS else server.starttls_port


def relay_account(server: SmtpTestServer, mode: Mode, ca_file: str, **overrides) -> RelayAccount:
    """The test server's account as a relay needs it: by address, certificate name localhost."""
    values = {
        "host": server.host,
        "port": port_for(server, mode),
        "mode": mode,
        "user": server.user,
        "password": server.password,
        "ca_file": ca_file,
        "tls_name": "localhost",
    }
    values.update(overrides)
    return RelayAccount(**values)


def applied(mta, server: SmtpTestServer, mode: Mode, **overrides) -> RelayAccount:
    """The test server's account (``relay_account``), configured into the private relay
    ``mta`` (the postfix or exim fixture)."""
    account = relay_account(server, mode, mta.ca_file, **overrides)
    assert mta.relay.apply(account, confirm=True).ok
    return account


def relay_target(account: RelayAccount, timeout: float = LIMIT) -> Target:
    return Target(
        host=account.host,
        port=account.port,
        mode=account.mode,
        user=account.user,
        password=account.password,
        sender=SENDER,
        recipient=RECIPIENT,
        ca_file=account.ca_file,
        timeout=timeout,
    )


def make_message(test_id: str, command: str = "relay") -> bytes:
    return build_test_message(sender=SENDER, recipient=RECIPIENT, command=command, test_id=test_id)


def relay_send(mta, account: RelayAccount, test_id: str, timeout: float = LIMIT) -> SendResult:
    """A test message through the private relay ``mta``, followed until delivered or not."""
    return mta.relay.test_send(relay_target(account, timeout), make_message(test_id))


def mode_of(path: str | Path) -> int:
    return os.stat(path).st_mode & 0o777
