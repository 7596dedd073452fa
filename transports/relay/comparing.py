"""What the comparisons of postfix and exim share: the findings, the words for a relay
that is missing, and the check of the login the relay uses."""

from __future__ import annotations

from ..texts import Param, Text, gettext_noop
from .model import Difference, GeneratedConfig, RelayAccount, RelayStatus, secret_digest

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
