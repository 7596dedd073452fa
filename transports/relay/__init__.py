"""Relay servers: postfix and exim checked, configured, and followed to real delivery.

Plain Python, no Django. Each relay is a :class:`Relay`, the one type callers use::

    relay = PostfixRelay()                  # or PostfixRelay("/srv/postfix-private")
    status = relay.status()                 # installed, running, version, TLS library, settings
    relay.compare(status, account)          # list of Difference, each said as a Text
    relay.render(account)                   # GeneratedConfig: settings and files, secret flagged
    relay.apply(account, confirm=True)      # backup, write, check, reload, or roll back
    relay.ready()                           # (bool, Text): can a message be followed now?
    relay.queue()                           # Queue: its sendmail argv, environment, follower
    relay.test_send(target, message)        # SendResult: a pass only once delivered

``relay.test_send`` and ``relay.hand_over`` are the queue's (``relay.queue().test_send``);
a transport feeding the relay by its own command (bsd-mailx) calls ``hand_over`` with it.

``EximRelay(binary, conf_dir, config_file, update_exim4_conf)`` is the same for
Debian's exim4, also for a private unpacked copy (docs/relays.md).
"""

from __future__ import annotations

from .exim import EximRelay
from .follow import BOUNCED_BY, Queue, QueueState
from .local import local_relay
from .model import (
    ApplyResult,
    ConfigFile,
    Difference,
    GeneratedConfig,
    Relay,
    RelayAccount,
    RelayStatus,
)
from .postfix import PostfixRelay

__all__ = [
    "BOUNCED_BY",
    "ApplyResult",
    "ConfigFile",
    "Difference",
    "EximRelay",
    "GeneratedConfig",
    "PostfixRelay",
    "Queue",
    "QueueState",
    "Relay",
    "RelayAccount",
    "RelayStatus",
    "local_relay",
]
