"""What apply() of postfix and exim share: the outcomes refused, rolled back, done; the
checks that roll back; apply() itself, from the configuration render() makes."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..run import RunOutput, run
from .files import Backup, rights_problem
from .follow import HandOverRelay
from .model import ApplyResult, GeneratedConfig, RelayAccount


class ConfiguredRelay(HandOverRelay):
    """A relay that writes the configuration it renders for an account."""

    def render(self, account: RelayAccount) -> GeneratedConfig:
        raise NotImplementedError

    def apply_config(
        self, config: GeneratedConfig, *, confirm: bool = False, ca_file: str | None = None
    ) -> ApplyResult:
        raise NotImplementedError

    def apply(self, account: RelayAccount, *, confirm: bool = False) -> ApplyResult:
        return self.apply_config(self.render(account), confirm=confirm, ca_file=account.ca_file)


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


def rejection(
    backup: Backup, written: list[str], steps: Iterable[tuple[str, list[str]]], timeout: float
) -> ApplyResult | None:
    """Run the relay's checks of the new files, each (name, argv) in turn; the first that
    fails or times out puts the previous files back. None when all of them passed."""
    for name, argv in steps:
        out = run(argv, timeout=timeout)
        if out.returncode != 0 or out.timed_out:
            return rolled_back(backup, written, name, out)
    return None
