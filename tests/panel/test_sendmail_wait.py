"""``xmail-sendmail --wait S`` as an application sees it: the real entry point in a
process of its own, the delivery running meanwhile in this one, and the one line on
stderr saying what the first attempt did; the exit code is 0 whenever the outbox has
the message."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from outbox_helpers import ENTRY, message, use_order

from xmailadmin import delivery

pytestmark = pytest.mark.django_db


def send_waiting(outbox, subject: str, to: str, wait: str = "20"):
    """Start the application's send; it waits for the delivery this test runs."""
    process = subprocess.Popen(
        [sys.executable, str(ENTRY), "--wait", wait, "-f", "app@example.org", to],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "XMAILADMIN_OUTBOX": str(outbox)},
    )
    process.stdin.write(message(subject, to))
    process.stdin.close()
    return process


def deliver_until_done(outbox, process, timeout: float = 25.0) -> tuple[int, str]:
    """Run the delivery, as the worker would on the FIFO's wake-up, until the sender ends."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        delivery.run(outbox, budget_s=5)
        time.sleep(0.05)
    code = process.wait(timeout=5)
    return code, process.stderr.read().decode().strip()


def test_wait_reports_the_delivery_through_the_first_command(outbox, account, smtp):
    use_order("python3", "curl")
    process = send_waiting(outbox, "Gewartet", "rcpt@example.net")

    code, stderr = deliver_until_done(outbox, process)

    assert code == 0
    assert stderr == "xmail-sendmail: delivered through python3"
    got = smtp.wait_for(lambda r: "Gewartet" in r.raw.decode())
    assert got.rcpt_tos == ["rcpt@example.net"]


def test_wait_reports_a_refusal_and_the_notice_but_accepts(outbox, account, refusing):
    refusing.refused_recipients["x@example.net"] = "550 5.1.1 <x@example.net>: unknown"
    use_order("python3")
    process = send_waiting(outbox, "Abgelehnt", "x@example.net")

    code, stderr = deliver_until_done(outbox, process)

    assert code == 0  # accepted: the refusal is the outbox's to report, by a notice
    assert stderr.startswith("xmail-sendmail: the server refused it: ")
    assert "550" in stderr and "unknown" in stderr
    assert stderr.endswith("; the sender gets a notice")
    assert refusing.find("Subject", "Abgelehnt") == []


def test_wait_reports_a_temporary_refusal_with_the_next_try(outbox, account, refusing):
    refusing.refused_recipients["later@example.net"] = "450 4.2.0 <later@example.net>: greylisted"
    use_order("python3")
    process = send_waiting(outbox, "Später", "later@example.net")

    code, stderr = deliver_until_done(outbox, process)

    assert code == 0
    assert stderr.startswith("xmail-sendmail: in the outbox, not yet delivered: ")
    assert "450" in stderr and "greylisted" in stderr
    assert "; next try at 20" in stderr  # a date and time, not "soon"


def test_wait_without_a_running_delivery_gives_up_after_the_wait(outbox, account):
    started = time.monotonic()
    process = send_waiting(outbox, "Niemand da", "rcpt@example.net", wait="1")

    code = process.wait(timeout=15)
    took = time.monotonic() - started

    assert code == 0
    assert process.stderr.read().decode().strip() == (
        "xmail-sendmail: in the outbox; no delivery attempt within 1 s (is the worker running?)"
    )
    assert 1 <= took < 10
    assert len(list((outbox / "new").iterdir())) == 1  # still there for the worker
