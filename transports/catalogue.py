"""The vendor's table of mail commands, as data: the one place that names every command.

Each row names its transport class, which knows how to send through the command and
how to detect it. The order of ``CATALOGUE`` is the vendor's order of recommendation;
``rank`` repeats it so it survives sorting and serialising.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .base import Transport
from .curl import Curl
from .mailx import BsdMailx, HeirloomMailx, MailutilsMailx
from .msmtp import Msmtp
from .mutt import Mutt
from .openssl_s_client import OpensslSClient
from .perl_script import PerlScript
from .python_script import Python3Script, PythonScript
from .s_nail import SNail, SNail15
from .sendmail import EximSendmail, PostfixSendmail
from .texts import Text, gettext_noop


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


STATUS_LABELS: dict[Status, Text] = {
    Status.RECOMMENDED: Text(gettext_noop("recommended")),
    Status.UNTESTED_RECOMMENDED: Text(gettext_noop("untested but recommended")),
    Status.WORKS: Text(gettext_noop("works")),
    Status.WORKS_MOSTLY: Text(gettext_noop("works mostly")),
    Status.UNTESTED_SHOULD_WORK: Text(gettext_noop("untested, should work")),
    Status.OUTDATED: Text(gettext_noop("outdated")),
    Status.NOT_RELEASED: Text(gettext_noop("not yet released")),
    Status.UNSUITABLE: Text(gettext_noop("unsuitable")),
    Status.UNTESTED: Text(gettext_noop("untested")),
}


@dataclass(frozen=True)
class Entry:
    """One mail command. ``label`` and ``remark`` are message ids: the panel shows them
    in the reader's language, the CLI in English."""

    key: str
    label: Text
    role: str  # MUA / MSA / MTA / MDA, combined with "+"
    status: Status
    remark: Text
    transport: type[Transport]
    rank: int

    @property
    def unsuitable(self) -> bool:
        return self.status is Status.UNSUITABLE

    @property
    def status_label(self) -> Text:
        return STATUS_LABELS[self.status]


def _e(transport: type[Transport], label: str, role: str, status: Status, remark: str) -> Entry:
    return Entry(transport.key, Text(label), role, status, Text(remark), transport, rank=0)


_ROWS = [
    _e(
        PythonScript,
        gettext_noop("python (shipped script)"),
        "MSA",
        Status.RECOMMENDED,
        gettext_noop("script ships with the product"),
    ),
    _e(
        Python3Script,
        gettext_noop("python3 (shipped script)"),
        "MSA",
        Status.RECOMMENDED,
        gettext_noop("script ships with the product"),
    ),
    _e(
        PerlScript,
        gettext_noop("perl (shipped script)"),
        "MSA",
        Status.RECOMMENDED,
        gettext_noop("script ships with the product"),
    ),
    _e(
        Curl,
        gettext_noop("curl"),
        "MSA",
        Status.RECOMMENDED,
        gettext_noop("mind the TLS library version"),
    ),
    _e(
        Msmtp,
        gettext_noop("msmtp"),
        "MSA",
        Status.UNTESTED_RECOMMENDED,
        gettext_noop("the most stable SMTP sender according to upstream"),
    ),
    _e(
        PostfixSendmail,
        gettext_noop("sendmail via postfix relay"),
        "MSA+MTA+MDA",
        Status.WORKS,
        gettext_noop("needs extensive relay configuration"),
    ),
    _e(
        OpensslSClient,
        gettext_noop("openssl s_client"),
        "MSA",
        Status.WORKS_MOSTLY,
        gettext_noop("can fail with special mail server setups"),
    ),
    _e(
        EximSendmail,
        gettext_noop("sendmail via exim relay"),
        "MSA+MTA",
        Status.UNTESTED_SHOULD_WORK,
        gettext_noop("needs extensive relay configuration"),
    ),
    _e(
        SNail,
        gettext_noop("s-nail (version 14.x)"),
        "MUA",
        Status.OUTDATED,
        gettext_noop("mind the TLS library version"),
    ),
    _e(
        SNail15,
        gettext_noop("s-nail (version 15.x)"),
        "MUA",
        Status.NOT_RELEASED,
        gettext_noop("mind the TLS library version"),
    ),
    _e(
        Mutt,
        gettext_noop("mutt"),
        "MUA",
        Status.UNSUITABLE,
        gettext_noop("mail client, faulty processing"),
    ),
    _e(
        HeirloomMailx,
        gettext_noop("mailx (Heirloom)"),
        "MUA+MSA",
        Status.UNSUITABLE,
        gettext_noop("mail client, faulty processing"),
    ),
    _e(
        BsdMailx,
        gettext_noop("mailx (BSD)"),
        "MUA+MSA",
        Status.UNTESTED,
        gettext_noop("expect the Heirloom faults"),
    ),
    _e(
        MailutilsMailx,
        gettext_noop("mailx (GNU Mailutils)"),
        "MUA+MSA",
        Status.UNTESTED,
        gettext_noop("expect the Heirloom faults"),
    ),
]

CATALOGUE: tuple[Entry, ...] = tuple(
    Entry(**{**e.__dict__, "rank": i}) for i, e in enumerate(_ROWS, start=1)
)
BY_KEY: dict[str, Entry] = {e.key: e for e in CATALOGUE}
KEYS: tuple[str, ...] = tuple(BY_KEY)


def transport_for(key: str, executable: str | None = None, **options: Any) -> Transport:
    """The transport of one row, ready to send; ``options`` as its class takes them
    (``relay=`` for sendmail and bsd-mailx)."""
    try:
        entry = BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown mail command {key!r}; known: {', '.join(KEYS)}") from None
    return entry.transport(executable, **options)
