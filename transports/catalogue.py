"""The vendor's table of mail commands, as data (DESIGN.md, requirements page).

The order of ``CATALOGUE`` is the vendor's order of recommendation; ``rank``
repeats it so it survives sorting and serialising.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    RECOMMENDED = "recommended"
    UNTESTED_RECOMMENDED = "untested_recommended"
    WORKS = "works"
    WORKS_MOSTLY = "works_mostly"
    UNTESTED_SHOULD_WORK = "untested_should_work"
    OUTDATED = "outdated"
    NOT_RELEASED = "not_released"
    UNSUITABLE = "unsuitable"
    UNTESTED = "untested"


STATUS_LABELS: dict[Status, tuple[str, str]] = {
    # (German, English)
    Status.RECOMMENDED: ("empfohlen", "recommended"),
    Status.UNTESTED_RECOMMENDED: ("ungetestet, aber empfohlen", "untested but recommended"),
    Status.WORKS: ("funktioniert", "works"),
    Status.WORKS_MOSTLY: ("funktioniert meistens", "works mostly"),
    Status.UNTESTED_SHOULD_WORK: ("ungetestet, sollte funktionieren", "untested, should work"),
    Status.OUTDATED: ("veraltet", "outdated"),
    Status.NOT_RELEASED: ("noch nicht offiziell freigegeben", "not yet released"),
    Status.UNSUITABLE: ("ungeeignet", "unsuitable"),
    Status.UNTESTED: ("ungetestet", "untested"),
}


@dataclass(frozen=True)
class Entry:
    key: str
    label_de: str
    label_en: str
    role: str  # MUA / MSA / MTA / MDA, combined with "+"
    status: Status
    remark_de: str
    remark_en: str
    rank: int

    @property
    def unsuitable(self) -> bool:
        return self.status is Status.UNSUITABLE


def _e(key, label_de, label_en, role, status, remark_de, remark_en) -> Entry:
    return Entry(key, label_de, label_en, role, status, remark_de, remark_en, rank=0)


_ROWS = [
    _e(
        "python",
        "python (mitgeliefertes Skript)",
        "python (shipped script)",
        "MSA",
        Status.RECOMMENDED,
        "Python-Skript wird mitgeliefert",
        "script ships with the product",
    ),
    _e(
        "python3",
        "python3 (mitgeliefertes Skript)",
        "python3 (shipped script)",
        "MSA",
        Status.RECOMMENDED,
        "Python-Skript wird mitgeliefert",
        "script ships with the product",
    ),
    _e(
        "perl",
        "perl (mitgeliefertes Skript)",
        "perl (shipped script)",
        "MSA",
        Status.RECOMMENDED,
        "Perl-Skript wird mitgeliefert",
        "script ships with the product",
    ),
    _e(
        "curl",
        "curl",
        "curl",
        "MSA",
        Status.RECOMMENDED,
        "Version der TLS-Bibliothek beachten",
        "mind the TLS library version",
    ),
    _e(
        "msmtp",
        "msmtp",
        "msmtp",
        "MSA",
        Status.UNTESTED_RECOMMENDED,
        "laut offizieller Quellen stabilste Möglichkeit, E-Mails per SMTP zu versenden",
        "the most stable SMTP sender according to upstream",
    ),
    _e(
        "postfix",
        "sendmail über Postfix-Relay",
        "sendmail via postfix relay",
        "MSA+MTA+MDA",
        Status.WORKS,
        "umfangreiche Relay-Konfiguration erforderlich",
        "needs extensive relay configuration",
    ),
    _e(
        "openssl",
        "openssl s_client",
        "openssl s_client",
        "MSA",
        Status.WORKS_MOSTLY,
        "kann bei speziellen Mailserver-Konfigurationen Probleme bereiten",
        "can fail with special mail server setups",
    ),
    _e(
        "exim",
        "sendmail über Exim-Relay",
        "sendmail via exim relay",
        "MSA+MTA",
        Status.UNTESTED_SHOULD_WORK,
        "umfangreiche Relay-Konfiguration erforderlich",
        "needs extensive relay configuration",
    ),
    _e(
        "snail14",
        "s-nail (Version 14.x)",
        "s-nail (version 14.x)",
        "MUA",
        Status.OUTDATED,
        "Version der TLS-Bibliothek beachten",
        "mind the TLS library version",
    ),
    _e(
        "snail15",
        "s-nail (Version 15.x)",
        "s-nail (version 15.x)",
        "MUA",
        Status.NOT_RELEASED,
        "Version der TLS-Bibliothek beachten",
        "mind the TLS library version",
    ),
    _e(
        "mutt",
        "mutt",
        "mutt",
        "MUA",
        Status.UNSUITABLE,
        "fehlerhafte Verarbeitung, da Mailclient",
        "mail client, faulty processing",
    ),
    _e(
        "mailx-heirloom",
        "mailx (Heirloom)",
        "mailx (Heirloom)",
        "MUA+MSA",
        Status.UNSUITABLE,
        "fehlerhafte Verarbeitung, da Mailclient",
        "mail client, faulty processing",
    ),
    _e(
        "mailx-bsd",
        "mailx (BSD)",
        "mailx (BSD)",
        "MUA+MSA",
        Status.UNTESTED,
        "es sind die gleichen Fehler wie bei mailx (Heirloom) zu erwarten",
        "expect the Heirloom faults",
    ),
    _e(
        "mailx-mailutils",
        "mailx (GNU Mailutils)",
        "mailx (GNU Mailutils)",
        "MUA+MSA",
        Status.UNTESTED,
        "es sind die gleichen Fehler wie bei mailx (Heirloom) zu erwarten",
        "expect the Heirloom faults",
    ),
]

CATALOGUE: tuple[Entry, ...] = tuple(
    Entry(**{**e.__dict__, "rank": i}) for i, e in enumerate(_ROWS, start=1)
)
BY_KEY: dict[str, Entry] = {e.key: e for e in CATALOGUE}
KEYS: tuple[str, ...] = tuple(BY_KEY)
