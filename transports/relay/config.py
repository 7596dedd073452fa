"""What the configurations of postfix and exim share: the comparison of a relay's
effective settings with what the account needs, and the steps of apply() (refused,
checked, rolled back) for the configuration render() makes."""

from __future__ import annotations

from collections.abc import Iterable

from ..base import ca_file_problem
from ..run import RunOutput, run
from ..texts import Param, Text, gettext_noop
from .files import Backup, rights_problem
from .model import (
    ApplyResult,
    Difference,
    GeneratedConfig,
    RelayAccount,
    RelayStatus,
    secret_digest,
)

# --- comparing ---------------------------------------------------------------------------

NOT_SET = Text(gettext_noop("(not set)"))


def shown(value: str) -> Param:
    """A setting's value in a sentence: the value, or "(not set)" when it is empty."""
    return value or NOT_SET


class Comparison:
    """The differences between a relay's effective configuration and what the account
    needs. Each relay names itself in ``mta`` and adds its own checks in ``_check``."""

    mta = ""

    def __init__(self, status: RelayStatus, account: RelayAccount, wanted: GeneratedConfig):
        self.status, self.account = status, account
        self.have = status.settings
        self.found: list[Difference] = []

    def _add(self, setting: str, current: str, wanted: str, msgid: str, /, **params: Param) -> None:
        """One difference; ``msgid`` (marked with gettext_noop) says it, with ``params``."""
        self.found.append(Difference(setting, current, wanted, Text(msgid, params)))

    def differences(self) -> list[Difference]:
        if not self.status.installed:
            self._add(self.mta, "", "", gettext_noop("%(mta)s is not installed"), mta=self.mta)
        else:
            self._check()
        return self.found

    def _check(self) -> None:
        raise NotImplementedError

    def _login(self, user: str, settings: tuple[str, str], where: Text) -> None:
        """The relay logs in as ``user`` with the password found ``where``: both must be
        the account's. ``settings``: the names of the user's and the password's setting."""
        if user != self.account.user:
            self._add(
                settings[0],
                user,
                self.account.user,
                gettext_noop("%(mta)s logs in as %(user)s, the account says %(account_user)s"),
                mta=self.mta,
                user=user,
                account_user=self.account.user,
            )
        elif self.status.password_digest != secret_digest(self.account.password):
            self._add(
                settings[1],
                "…",
                "…",
                gettext_noop("the password in %(where)s differs from the account's"),
                where=where,
            )


# --- applying ----------------------------------------------------------------------------


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
