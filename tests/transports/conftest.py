"""Fixtures for the mail commands under test."""

from __future__ import annotations

import time

import pytest
from mailcommands import SMTP_COMMANDS, Command


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
