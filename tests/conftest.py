"""Suite-wide fixtures: the loopback SMTP test server, failure helpers, strict mode.

Sub-folders keep their own fixtures in their own conftest.py files.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

# The helpers in tests/ and tests/support/ (the PKI, the SMTP test server) are imported
# by name, also under --import-mode=importlib.
_TESTS_DIR = Path(__file__).resolve().parent
for _folder in (str(_TESTS_DIR), str(_TESTS_DIR / "support")):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)

import smtp_server as smtpd  # noqa: E402
from pki import Pki, make_pki  # noqa: E402

STRICT_ENV = "XMAILADMIN_STRICT"


# --- the SMTP test server -------------------------------------------------


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def smtp_server(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[smtpd.SmtpTestServer]:
    # One per session, hence one per xdist worker, each on its own free ports.
    with smtpd.SmtpTestServer(pki, tmp_path_factory.mktemp("smtp-received")) as server:
        yield server


@pytest.fixture
def smtp(smtp_server: smtpd.SmtpTestServer) -> smtpd.SmtpTestServer:
    """The session's server, holding only messages sent during this test."""
    smtp_server.clear()
    return smtp_server


@pytest.fixture
def mail_test_id() -> str:
    """A unique value for the X-Xmailadmin-Test-Id header (smtp_server.TEST_ID_HEADER)."""
    return uuid.uuid4().hex


@pytest.fixture
def silent_server() -> Iterator[smtpd.SilentServer]:
    with smtpd.SilentServer() as server:
        yield server


@pytest.fixture
def refused_port() -> int:
    return smtpd.refused_port()


# --- strict mode: CI allows no skipped test -------------------------------


def _strict() -> bool:
    # Read on every report, not at import, so a test can switch it with monkeypatch.
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Covers skip markers, skipif and pytest.skip() in the test or in a fixture
    # (the last two in the "setup" phase, where pytest then shows an ERROR).
    report = yield
    # An xfail is reported as skipped too, but it is an expectation, not a skip.
    if _strict() and report.skipped and not hasattr(report, "wasxfail"):
        _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    # Module-level pytest.skip(allow_module_level=True) and pytest.importorskip().
    report = yield
    if _strict() and report.skipped:
        _fail_skip(report)
    return report


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = f"skipped in strict mode: {_skip_reason(report.longrepr)}"


def _skip_reason(longrepr: object) -> str:
    # pytest reports a skip as (path, line, "Skipped: <reason>").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, line, message = longrepr
        return f"{str(message).removeprefix('Skipped: ')} ({path}:{line})"
    return str(longrepr)
