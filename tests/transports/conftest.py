"""Fixtures for the mail commands under test."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest
from mailcommands import SMTP_COMMANDS, Command
from pki import Pki
from submission_server import SubmissionServer


@pytest.fixture(params=SMTP_COMMANDS, ids=lambda c: c.id)
def command(request: pytest.FixtureRequest) -> Command:
    cmd: Command = request.param
    cmd.require()
    return cmd


@pytest.fixture(scope="session")
def probe() -> dict[str, object]:
    """One probe of this machine's mail commands: the rows, its wall time, each row by key."""
    from transports.probe import probe_all

    start = time.monotonic()
    rows = probe_all()
    return {"rows": rows, "wall": time.monotonic() - start, **{d.key: d for d in rows}}


@pytest.fixture(scope="session")
def submission_server(pki: Pki) -> Iterator[SubmissionServer]:
    """postfix with Dovecot SASL on loopback (tests/support/submission_server.py),
    one per xdist worker; stopped, processes and folder gone, at the session's end."""
    if os.geteuid() != 0:
        pytest.skip("a private postfix and Dovecot need root (CI runs as root)")
    for binary, package in (("postfix", "postfix"), ("dovecot", "dovecot-core")):
        if not shutil.which(binary):
            pytest.skip(f"{binary} is not installed (scripts/setup.sh test installs {package})")
    server = SubmissionServer(pki).start()
    try:
        yield server
    finally:
        server.stop()
