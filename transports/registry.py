"""Catalogue key -> transport class: the one place that ties the two together."""

from __future__ import annotations

from .base import Transport
from .catalogue import KEYS
from .curl import Curl
from .mailx import BsdMailx, HeirloomMailx, MailutilsMailx
from .msmtp import Msmtp
from .mutt import Mutt
from .openssl_s_client import OpensslSClient
from .perl_script import PerlScript
from .python_script import Python3Script, PythonScript
from .s_nail import SNail, SNail15
from .sendmail import EximSendmail, PostfixSendmail

TRANSPORTS: dict[str, type[Transport]] = {
    cls.key: cls
    for cls in (
        PythonScript, Python3Script, PerlScript, Curl, Msmtp, PostfixSendmail, OpensslSClient,
        EximSendmail, SNail, SNail15, Mutt, HeirloomMailx, BsdMailx, MailutilsMailx,
    )
}  # fmt: skip
assert tuple(TRANSPORTS) == KEYS, "every catalogue row needs exactly one transport"


def get(key: str, executable: str | None = None) -> Transport:
    try:
        return TRANSPORTS[key](executable)
    except KeyError:
        raise KeyError(f"unknown mail command {key!r}; known: {', '.join(KEYS)}") from None
