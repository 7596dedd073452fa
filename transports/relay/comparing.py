"""What the comparisons of postfix and exim share: the findings, the words for a relay
that is missing, and the check of the login the relay uses."""

from __future__ import annotations

from .model import Difference, GeneratedConfig, RelayAccount, RelayStatus, secret_digest

NOT_SET = ("(not set)", "(nicht gesetzt)")


class Comparison:
    """The differences between a relay's effective configuration and what the account
    needs. Each relay names itself in ``mta`` and adds its own checks in ``_check``."""

    mta = ""

    def __init__(self, status: RelayStatus, account: RelayAccount, wanted: GeneratedConfig):
        self.status, self.account = status, account
        self.have = status.settings
        self.found: list[Difference] = []

    def _add(self, setting: str, current: str, wanted: str, en: str, de: str) -> None:
        self.found.append(Difference(setting, current, wanted, en, de))

    def differences(self) -> list[Difference]:
        if not self.status.installed:
            mta = self.mta
            self._add(mta, "", "", f"{mta} is not installed", f"{mta} ist nicht installiert")
        else:
            self._check()
        return self.found

    def _check(self) -> None:
        raise NotImplementedError

    def _login(self, user: str, settings: tuple[str, str], where: tuple[str, str]) -> None:
        """The relay logs in as ``user`` with the password found ``where`` (English,
        German): both must be the account's. ``settings``: the user's and the password's."""
        if user != self.account.user:
            self._add(
                settings[0],
                user,
                self.account.user,
                f"{self.mta} logs in as {user}, the account says {self.account.user}",
                f"{self.mta} meldet sich als {user} an, das Konto nennt {self.account.user}",
            )
        elif self.status.password_digest != secret_digest(self.account.password):
            self._add(
                settings[1],
                "…",
                "…",
                f"the password in {where[0]} differs from the account's",
                f"das Passwort in {where[1]} weicht vom Konto ab",
            )
