"""Relay servers: postfix and exim checked, configured, and followed to real delivery.

Plain Python, no Django. Each relay offers the same five calls (:class:`Relay`)::

    relay = PostfixRelay()                  # or PostfixRelay("/srv/postfix-private")
    status = relay.status()                 # installed, running, version, TLS library, settings
    relay.compare(status, account)          # list of Difference, each said as a Text
    relay.render(account)                   # GeneratedConfig: settings and files, secret flagged
    relay.apply(account, confirm=True)      # backup, write, check, reload, or roll back
    relay.test_send(target, message)        # SendResult: a pass only once delivered

``EximRelay(binary, conf_dir, config_file, update_exim4_conf)`` is the same for
Debian's exim4, also for a private unpacked copy (docs/relays.md).
"""

from __future__ import annotations

from .exim import EximRelay
from .follow import BOUNCED_BY
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
    "Relay",
    "RelayAccount",
    "RelayStatus",
    "local_relay",
]
