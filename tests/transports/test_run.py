"""The one subprocess helper: timeouts end the whole group and never hang."""

from __future__ import annotations

import time

from transports.run import run


def test_a_timeout_kills_the_command_and_its_children():
    started = time.monotonic()
    out = run(["sh", "-c", "sleep 30 & sleep 30"], timeout=1)

    assert out.timed_out and out.returncode is None
    assert time.monotonic() - started < 5


def test_a_helper_in_its_own_session_holding_the_pipes_does_not_hang_the_caller():
    started = time.monotonic()
    out = run(["sh", "-c", "setsid sleep 30 & echo started; sleep 30"], timeout=1)

    assert out.timed_out
    assert time.monotonic() - started < 1 + 2 + 2  # timeout + grace + margin


def test_the_child_sees_no_secret_from_our_environment(monkeypatch):
    monkeypatch.setenv("XMAILADMIN_FERNET_KEY", "not-for-children")
    out = run(["env"], timeout=5)

    assert "not-for-children" not in out.stdout
    assert "PATH=" in out.stdout
