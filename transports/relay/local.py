"""Which relay is behind the machine's ``/usr/sbin/sendmail``: the one that mailx,
GNU Mailutils and every other program handing mail to "the local sendmail" reach."""

from __future__ import annotations

import os

from ..run import which
from .exim import EximRelay
from .model import Relay
from .postfix import PostfixRelay

SENDMAIL = "/usr/sbin/sendmail"


def local_relay(sendmail: str = SENDMAIL) -> Relay | None:
    """The system relay owning ``sendmail`` (postfix's or exim's), or None."""
    target = os.path.realpath(sendmail)
    if not os.path.exists(target):
        return None
    if os.path.basename(target).startswith("exim"):
        return EximRelay(binary=target)
    # postfix's sendmail is its own binary; postconf says where postfix keeps it.
    if which("postconf"):
        return PostfixRelay()
    return None
