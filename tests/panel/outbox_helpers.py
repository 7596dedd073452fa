"""Submitting through the real bin/xmail-sendmail into a test outbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "bin" / "xmail-sendmail"


def message(subject: str, to: str = "rcpt@example.net", sender: str = "app@example.org") -> bytes:
    return (
        f"From: X-tanken <{sender}>\nTo: {to}\nSubject: {subject}\n\nGrüße aus dem Outbox-Test\n"
    ).encode()


def sendmail(folder: Path, *args: str, stdin: bytes, env: dict | None = None):
    return subprocess.run(
        [sys.executable, str(ENTRY), *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, "XMAILADMIN_OUTBOX": str(folder), **(env or {})},
        timeout=60,
    )


def use_order(*keys: str) -> None:
    """These commands on, first, in this order; the rest as they are, after them."""
    from xmailadmin.order import current_order, proposal_from, save_order

    rest = [k for k in current_order().order if k not in keys]
    save_order(proposal_from([*keys, *rest], keys))
