"""The sentences of ``transports/`` in the reader's language: the one place they are translated.

``transports`` speaks English message ids with parameters (:class:`transports.texts.Text`);
rows keep them as data (``Text.to_dict()``) with the values they had at the time, so a
page explains an old failure with the host and port it was sent to. :func:`say` turns one
into words when a page is rendered, in the active language: ``gettext(msgid) % params``,
each parameter that is a Text itself said in turn. Templates use the filter
``{{ value|say }}`` (templatetags/panel.py). The German texts are in
``locale/de/LC_MESSAGES/django.po``, collected by ``makemessages`` from ``transports/``
(its ``gettext_noop`` marks them); tests/panel/test_texts.py checks none is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from transports.texts import Text, is_text_dict

# What the local relay did with a test message (TestSend.delivery).
DELIVERY = {
    "delivered": _("delivered"),
    "deferred": _("deferred"),
    "bounced": _("bounced"),
    "still_queued": _("still queued"),
    "unverified": _("queued, delivery not verified"),
}
UNVERIFIED_CODES = frozenset({"queued_unverified", "left_queue_unconfirmed", "not_in_queue"})


def say(value: Text | Mapping[str, Any] | str | None) -> str:
    """A sentence in the active language.

    ``value`` is a Text, a stored Text (its ``to_dict()``), or a plain string: one an
    older row stored (English, as transports said it then; translated when it is a
    message id as it is) or one the panel wrote itself (already in its reader's words).
    """
    if is_text_dict(value):
        value = Text.from_dict(value)  # type: ignore[arg-type]
    if isinstance(value, Text):
        return value.rendered(gettext)
    if not value:
        return ""  # gettext("") would be the catalogue's header
    return gettext(str(value))


def said(values: list | None) -> list[str]:
    """Each of ``values`` (Texts, stored Texts or strings) in the active language."""
    return [say(v) for v in values or []]


def moment(value) -> str:
    """A point in time in the reader's words ("02.12.2026 17:03"), in the panel's zone:
    for sentences, mails and tooltips alike (not an RFC 5322 header's format)."""
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
