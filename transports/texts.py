"""Sentences as data: an English message id and the values that go into it.

``transports`` never translates and never picks a language. Every sentence it hands
out (a reason, a warning, a note, a difference, a label) is a :class:`Text`: the
English message id with ``%(name)s`` placeholders, and its parameters. ``str()`` gives
the English sentence (the CLI, logs, tests); the panel stores ``to_dict()`` with its
rows and translates the message id when a page is rendered, in the reader's language
(``xmailadmin/texts.py``).

Message ids are marked with :func:`gettext_noop`, the name Django's ``makemessages``
looks for, so the German catalogue collects them from here too::

    Text(gettext_noop("could not connect to %(host)s:%(port)s"), {"host": h, "port": p})

A parameter is a plain value (the tool's words, a host, a path) or a Text itself, which
is translated in turn. A literal ``%`` in a message id with parameters is written ``%%``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

Param = Union[str, int, float, "Text"]


def gettext_noop(msgid: str) -> str:
    """Mark ``msgid`` for translation (collected by makemessages) and return it as it is."""
    return msgid


@dataclass(frozen=True)
class Text:
    """One sentence: ``msgid`` (English, with ``%(name)s`` placeholders) and ``params``."""

    msgid: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))

    def __str__(self) -> str:
        return self.rendered(lambda msgid: msgid)

    def __hash__(self) -> int:
        return hash((self.msgid, tuple(sorted(self.params.items()))))

    def rendered(self, translate: Callable[[str], str]) -> str:
        """The sentence with every message id (this one and nested ones) put through
        ``translate``; the English one when a translation does not fit its parameters."""
        if not self.params:
            return translate(self.msgid)
        values = {
            name: value.rendered(translate) if isinstance(value, Text) else value
            for name, value in self.params.items()
        }
        for template in (translate(self.msgid), self.msgid):
            try:
                return template % values
            except (KeyError, ValueError, TypeError):
                continue
        return self.msgid

    def map(self, change: Callable[[str], str]) -> Text:
        """The same sentence with ``change`` applied to every string parameter (nested
        ones too), never to a message id: how secrets are removed from the tool's words."""
        return Text(self.msgid, {name: _changed(v, change) for name, v in self.params.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as a row stores it: ``{"msgid": ..., "params": {...}}``."""
        return {
            "msgid": self.msgid,
            "params": {
                name: value.to_dict() if isinstance(value, Text) else value
                for name, value in self.params.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Text:
        """The Text that :meth:`to_dict` stored."""
        return cls(
            str(data["msgid"]),
            {
                name: cls.from_dict(value) if is_text_dict(value) else value
                for name, value in (data.get("params") or {}).items()
            },
        )


def _changed(value: Param, change: Callable[[str], str]) -> Param:
    if isinstance(value, Text):
        return value.map(change)
    return change(value) if isinstance(value, str) else value


def is_text_dict(value: Any) -> bool:
    """Whether ``value`` is a stored Text (``Text.to_dict()``)."""
    return isinstance(value, Mapping) and isinstance(value.get("msgid"), str)


def texts_to_dicts(texts: list[Text]) -> list[dict[str, Any]]:
    return [text.to_dict() for text in texts]
