"""Fixtures for the mail commands under test."""

from __future__ import annotations

import pytest
from mailcommands import SMTP_COMMANDS, Command


@pytest.fixture(params=SMTP_COMMANDS, ids=lambda c: c.id)
def command(request: pytest.FixtureRequest) -> Command:
    cmd: Command = request.param
    cmd.require()
    return cmd
