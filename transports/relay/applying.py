"""What apply() of postfix and exim share: the outcomes refused, rolled back, done; the
checks that roll back; apply() itself, from the configuration render() makes."""

from __future__ import annotations

from collections.abc import Iterable

from ..base import ca_file_problem
from ..run import RunOutput, run
from ..texts import Text, gettext_noop
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
            ok=False, reason=Text(gettext_noop("not written: the administrator has not confirmed"))
        )
    if problem := rights_problem(config_dir):
        return ApplyResult(ok=False, reason=problem)
    if ca_file and ca_file_problem(ca_file):
        return ApplyResult(
            ok=False,
            reason=Text(
                gettext_noop("not written: the CA file %(path)s holds no usable certificate"),
                {"path": ca_file},
            ),
        )
    return None


def rolled_back(backup: Backup, written: list[str], step: str, out: RunOutput) -> ApplyResult:
    """The relay rejected the new files: put the old ones back and say who objected."""
    backup.restore()
    backup.finish()  # the secret files' copies are of no more use
    said: str | Text
    if out.timed_out:
        said = Text(gettext_noop("timed out"))
    elif out.text:
        said = out.text
    else:
        # postfix prints its complaint only to a terminal; otherwise it goes to syslog.
        said = Text(
            gettext_noop("exit %(code)s, nothing printed (see the system log)"),
            {"code": out.returncode},
        )
    return ApplyResult(
        ok=False,
        reason=Text(
            gettext_noop(
                "`%(step)s` rejected the new configuration; the previous files are back: %(said)s"
            ),
            {"step": step, "said": said},
        ),
        written=written,
        backups=backup.copies,
        rolled_back=True,
        output=str(said),
    )


def write_failed(backup: Backup, exc: OSError) -> ApplyResult:
    backup.restore()
    backup.finish()
    return ApplyResult(
        ok=False,
        reason=Text(
            gettext_noop(
                "writing the configuration failed, the previous files are back: %(error)s"
            ),
            {"error": str(exc)},
        ),
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
