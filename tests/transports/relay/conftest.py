"""Fixtures of the relay tests: a private postfix or exim per test, relaying to the
session's loopback SMTP server (tests/support/smtp_server.py).

Every test gets its own instance (configuration, queue, log in a directory of its
own, no listening port), so tests are isolated from each other, from the machine's
/etc/postfix and from pytest-xdist's other worker.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from pki import Pki
from private_mta import PrivateExim, PrivatePostfix, private_exim_binary


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("a private postfix or exim instance needs root (CI runs as root)")


@pytest.fixture
def postfix(pki: Pki) -> Iterator[PrivatePostfix]:
    _require_root()
    if not shutil.which("postfix"):
        pytest.skip("postfix is not installed (scripts/setup.sh test installs it)")
    instance = PrivatePostfix(pki.ca_file)
    try:
        yield instance.start()
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def exim_binary() -> str:
    _require_root()
    try:
        return private_exim_binary()
    except RuntimeError as exc:
        pytest.skip(f"no private exim: {exc}")


@pytest.fixture
def exim(exim_binary: str, pki: Pki) -> Iterator[PrivateExim]:
    instance = PrivateExim(exim_binary, pki.ca_file)
    try:
        yield instance.start()
    finally:
        instance.stop()
