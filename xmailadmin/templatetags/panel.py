"""Small filters that turn stored codes into words in the user's language."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import texts

register = template.Library()

VERDICTS = {
    "yes": _("yes"),
    "partly": _("partly"),
    "no": _("no"),
    "unknown": _("unknown"),
}

STEPS = {
    "connect": _("connect"),
    "tls": _("TLS"),
    "ehlo": _("EHLO"),
    "auth": _("login (AUTH)"),
    "mail_from": _("MAIL FROM"),
    "rcpt_to": _("RCPT TO"),
    "data": _("DATA"),
    "queue": _("queue"),
    "timeout": _("timeout"),
    "worker": _("worker stopped"),  # the panel's own steps (jobs.py), not transports'
    "broker": _("broker (Redis)"),
    "unsupported": _("not supported"),
    "config": _("configuration"),
    "unknown": _("unknown"),
    "done": _("done"),
}

VERDICT_CSS = {"yes": "pass", "partly": "partly", "no": "fail", "unknown": "unknown"}


@register.filter
def verdict(value: str) -> str:
    return str(VERDICTS.get(value or "unknown", value))


@register.filter
def verdict_css(value: str) -> str:
    return VERDICT_CSS.get(value or "unknown", "unknown")


@register.filter
def step_label(value: str) -> str:
    return str(STEPS.get(value, value))


@register.filter
def say(value) -> str:
    """A sentence of transports (a Text, or one a row stored) in the reader's language."""
    return texts.say(value)


@register.filter
def status_css(entry) -> str:
    """Colour of the vendor's status: recommended green, unsuitable red, the rest neutral."""
    status = getattr(entry.status, "value", entry.status)
    if status in ("recommended", "untested_recommended", "works"):
        return "pass"
    if status == "unsuitable":
        return "fail"
    if status in ("outdated", "not_released", "works_mostly"):
        return "partly"
    return "unknown"


@register.filter
def ago(value: datetime | None) -> str:
    """ "just now" under a minute, else "5 minutes ago" (German: "vor 5 Minuten")."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return gettext("just now")
    return gettext("%(time)s ago") % {"time": timesince(value)}


@register.filter
def outbox_state(value: str) -> str:
    """An outbox message's state in the reader's words (a bundle's unknown one as it is)."""
    from ..models import Outbox

    return str(Outbox(value).label) if value in Outbox.values else str(value)
