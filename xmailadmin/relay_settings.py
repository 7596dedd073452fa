"""The panel's relays: which postfix and exim it drives, and the account as they need it.

``transports.relay`` does the work; this module only reads the settings that say
which instance to use (the system's own unless a directory or binary is given)
and turns an :class:`~xmailadmin.models.Account` into a ``RelayAccount``, and a
generated configuration into what the relay page shows.
"""

from __future__ import annotations

import json

from django.conf import settings

from transports import catalogue
from transports.base import Mode, Transport
from transports.relay import EximRelay, PostfixRelay, Relay, RelayAccount

# The relay pages, in navigation order; each key is also the catalogue key of the
# mail command ("postfix", "exim") whose sendmail feeds that relay.
MTAS = ("postfix", "exim")
LABELS = {"postfix": "Postfix", "exim": "Exim"}


def configured(mta: str) -> Relay | None:
    """The relay the settings name, or None for the system's own (the transports'
    default, which knows best where Debian keeps it)."""
    if mta == "postfix":
        directory = settings.XMAILADMIN_POSTFIX_CONFIG_DIR
        return PostfixRelay(directory) if directory else None
    if mta == "exim":
        parts = (
            settings.XMAILADMIN_EXIM_BINARY,
            settings.XMAILADMIN_EXIM_CONF_DIR,
            settings.XMAILADMIN_EXIM_CONFIG_FILE,
            settings.XMAILADMIN_EXIM_UPDATE_CONF,
        )
        return EximRelay(*(p or None for p in parts)) if any(parts) else None
    raise KeyError(mta)


def transport_for(key: str) -> Transport:
    """The mail command of ``key`` as this panel sends through it: sendmail of postfix or
    exim (and bsd-mailx, which calls postfix's) follows the relay the settings name,
    else the system's own."""
    relay = None
    if key in MTAS:
        relay = configured(key)
    elif key == "mailx-bsd":
        relay = configured("postfix")
    if relay is None:
        return catalogue.transport_for(key)
    return catalogue.transport_for(key, relay=relay)


def relay_for(mta: str) -> Relay:
    """The relay to check, configure and test on the relay page."""
    relay = configured(mta)
    if relay is not None:
        return relay
    return PostfixRelay() if mta == "postfix" else EximRelay()


def relay_account(account, password: str) -> RelayAccount:
    """What the relay must be configured with; raises TargetError when it cannot be."""
    return RelayAccount(
        host=account.host,
        port=account.port,
        user=account.username,
        password=password,
        mode=Mode(account.mode) if account.mode else None,
        ca_file=account.ca_file or None,
        tls_name=account.tls_name or None,
    )


def shown(config, password: str) -> dict:
    """The generated configuration as the page shows it: the password masked."""
    data = config.to_dict(password)
    data["text"] = config.text(password)
    return json.loads(json.dumps(data))  # what the JSON column gives back, for comparing
