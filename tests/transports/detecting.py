"""Helpers for the detection tests: stand-in tools for what this machine lacks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from transports.detection import Detection
from transports.probe import detect


def need(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def stand_in(tmp_path: Path, name: str, output: str, exit_code: int = 0) -> str:
    """A shell script that prints ``output`` whatever it is asked: a tool we do not have."""
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {exit_code}\n")
    script.chmod(0o755)
    return str(script)


def detect_stand_in(
    tmp_path: Path, key: str, output: str, name: str | None = None, exit_code: int = 0
) -> Detection:
    """``detect(key)`` on a stand-in (named ``name``, else ``key``) that prints ``output``."""
    return detect(key, stand_in(tmp_path, name or key, output, exit_code))
