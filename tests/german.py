"""The panel's German catalogue, read without Django: what a German reader would see of a
Text of transports (the compiled locale/de/LC_MESSAGES/django.mo, stdlib gettext)."""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

from transports.texts import Text

MO_FILE = Path(__file__).resolve().parents[1] / "xmailadmin/locale/de/LC_MESSAGES/django.mo"


@cache
def _catalogue() -> gettext.GNUTranslations:
    with MO_FILE.open("rb") as fh:
        return gettext.GNUTranslations(fh)


def has_german(msgid: str) -> bool:
    """Whether the catalogue holds a German text for ``msgid``."""
    return msgid in _catalogue()._catalog  # noqa: SLF001 (stdlib keeps it there)


def german(text: Text) -> str:
    """``text`` as the panel says it in German; every message id in it must be known."""
    for msgid in msgids(text):
        assert has_german(msgid), f"no German for {msgid!r}"
    return text.rendered(_catalogue().gettext)


def msgids(text: Text) -> list[str]:
    """The message ids of ``text`` and of the Texts among its parameters."""
    nested = [m for v in text.params.values() if isinstance(v, Text) for m in msgids(v)]
    return [text.msgid, *nested]
