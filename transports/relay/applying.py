"""The outcomes of apply() that postfix and exim share: refused, rolled back, done."""

from __future__ import annotations

import os

from ..run import RunOutput
from .files import Backup, rights_problem
from .model import ApplyResult


def refusal(confirm: bool, config_dir: str, ca_file: str | None) -> ApplyResult | None:
    """Why nothing may be written yet, or None when apply() may go ahead."""
    if not confirm:
        return ApplyResult(
            ok=False,
            reason="not written: the administrator has not confirmed",
            reason_de="nicht geschrieben: der Administrator hat nicht bestätigt",
        )
    if problem := rights_problem(config_dir):
        return ApplyResult(ok=False, reason=problem[0], reason_de=problem[1])
    if ca_file and not os.access(ca_file, os.R_OK):
        return ApplyResult(
            ok=False,
            reason=f"not written: the CA file {ca_file} does not exist or is not readable",
            reason_de=f"nicht geschrieben: die CA-Datei {ca_file} fehlt oder ist nicht lesbar",
        )
    return None


def rolled_back(backup: Backup, written: list[str], step: str, out: RunOutput) -> ApplyResult:
    """The relay rejected the new files: put the old ones back and say who objected."""
    backup.restore()
    if out.timed_out:
        said = "timed out"
    else:
        # postfix prints its complaint only to a terminal; otherwise it goes to syslog.
        said = out.text or f"exit {out.returncode}, nothing printed (see the system log)"
    return ApplyResult(
        ok=False,
        reason=f"`{step}` rejected the new configuration; the previous files are back: {said}",
        reason_de=(
            f"`{step}` hat die neue Konfiguration abgelehnt; die vorherigen Dateien sind "
            f"wiederhergestellt: {said}"
        ),
        written=written,
        backups=backup.copies,
        rolled_back=True,
        output=said,
    )


def write_failed(backup: Backup, exc: OSError) -> ApplyResult:
    backup.restore()
    return ApplyResult(
        ok=False,
        reason=f"writing the configuration failed, the previous files are back: {exc}",
        reason_de=f"Schreiben fehlgeschlagen, die vorherigen Dateien sind zurück: {exc}",
        backups=backup.copies,
        rolled_back=True,
    )
