"""The outbox: the messages applications on this server handed to xmail-sendmail, each
with every delivery attempt; administrators retry or discard one, support only looks.

The list is one ``<tbody>`` per message: its summary row polls itself while the message
is waiting or being sent (so a delivery shows without a reload), and the attempts open
in place below it, in a row of their own that the polling leaves alone. Retry and
discard are plain form posts (redirect with a message); with htmx they swap the
message's ``<tbody>`` and say the outcome in it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.validators import validate_email
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, npgettext_lazy, pgettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from outbox import spool

from .. import delivery, health, tasks
from ..models import PERM_CHANGE, PERM_VIEW, AuditEntry, Outbox, OutboxMessage
from .common import POLL_SLOWEST, POLL_STEPS, panel_view

log = logging.getLogger(__name__)

OPEN = (Outbox.WAITING, Outbox.SENDING)
PER_PAGE = 50

# The filter tabs: key in ?state=, label, the states shown (None: every state).
FILTERS = {
    "open": (gettext_lazy("Open"), OPEN),
    "delivered": (gettext_lazy("Delivered"), (Outbox.DELIVERED,)),
    "bounced": (gettext_lazy("Bounced"), (Outbox.BOUNCED,)),
    "all": (gettext_lazy("All"), None),
}
DEFAULT_FILTER = "open"

# A message waiting for a retry minutes away, or one no worker takes, changes rarely:
# its row asks again this often (a retry by hand swaps the row at once anyway).
POLL_IDLE = "5s"
POLL_FAST_FOR_S = 60.0

# After "seit" and "in" German wants the dative ("seit 2 Tagen"), which Django's own
# "2 Tage" is not; English reads the same either way.
DATIVE = {
    "year": npgettext_lazy("dative", "%(num)d year", "%(num)d years", "num"),
    "month": npgettext_lazy("dative", "%(num)d month", "%(num)d months", "num"),
    "week": npgettext_lazy("dative", "%(num)d week", "%(num)d weeks", "num"),
    "day": npgettext_lazy("dative", "%(num)d day", "%(num)d days", "num"),
    "hour": npgettext_lazy("dative", "%(num)d hour", "%(num)d hours", "num"),
    "minute": npgettext_lazy("dative", "%(num)d minute", "%(num)d minutes", "num"),
}

LEVELS = {"success": messages.SUCCESS, "warning": messages.WARNING, "error": messages.ERROR}


def duration(start: datetime, end: datetime, *, dative: bool = False) -> str:
    """How long from ``start`` to ``end`` in words ("45 minutes", "2 days")."""
    if (end - start).total_seconds() < 60:
        return pgettext("dative", "less than a minute") if dative else _("less than a minute")
    if dative:
        return timesince(start, end, time_strings=DATIVE, depth=1)
    return timesince(start, end, depth=1)


@dataclass
class Shown:
    """One message as its rows on the page show it."""

    row: OutboxMessage

    @property
    def recipients(self) -> list[tuple[str, str]]:
        """Each recipient with what became of it: "bounced", "pending" or "delivered"."""
        bounced, pending = set(self.row.bounced_to), set(self.row.pending)
        return [
            (r, "bounced" if r in bounced else "pending" if r in pending else "delivered")
            for r in self.row.recipients
        ]

    @property
    def age(self) -> str:
        return duration(self.row.submitted_at, timezone.now())

    @property
    def next_try(self) -> str:
        """When the next attempt is ("" once the message is final)."""
        if self.row.final:
            return ""
        if self.row.state == Outbox.SENDING:
            return _("being sent now")
        now = timezone.now()
        if self.row.next_try_at is None or self.row.next_try_at <= now:
            return _("due now")
        return _("in %(time)s") % {"time": duration(now, self.row.next_try_at, dative=True)}

    @property
    def poll(self) -> str:
        """The delay of the summary row's next poll; "" once the message is final."""
        if self.row.final:
            return ""
        now = timezone.now()
        since = self.row.next_try_at or self.row.submitted_at
        if since > now:
            return POLL_IDLE
        # Due or being sent: as a running test row, often at first, then less.
        age = (now - since).total_seconds()
        if age >= POLL_FAST_FOR_S:
            return POLL_IDLE
        return next((delay for below, delay in POLL_STEPS if age < below), POLL_SLOWEST)

    @property
    def can_retry(self) -> bool:
        return self.row.state in (Outbox.WAITING, Outbox.BOUNCED)

    @property
    def can_discard(self) -> bool:
        return self.row.state in (Outbox.WAITING, Outbox.BOUNCED)

    @property
    def try_count(self) -> int:
        count = getattr(self.row, "try_count", None)
        return self.row.tries.count() if count is None else count


def _rows():
    # An aggregate drops Meta.ordering: newest first, said again.
    return OutboxMessage.objects.annotate(try_count=Count("tries")).order_by("-submitted_at", "-id")


def _message(message_id: int) -> OutboxMessage:
    return get_object_or_404(_rows(), pk=message_id)


def _back(request: HttpRequest) -> str:
    """The list the user came from (its filter and page), never another address."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    listing = reverse("outbox")
    parts = urlsplit(wanted)
    if parts.scheme or parts.netloc or parts.path != listing:
        return listing
    return f"{listing}?{parts.query}" if parts.query else listing


def _filters(current: str) -> list[dict]:
    by_state = dict(OutboxMessage.objects.order_by().values_list("state").annotate(n=Count("id")))
    tabs = []
    for key, (label, states) in FILTERS.items():
        counted = by_state.values() if states is None else (by_state.get(s, 0) for s in states)
        tabs.append({"key": key, "label": label, "count": sum(counted), "current": key == current})
    return tabs


# --- the pages -------------------------------------------------------------------------


@require_GET
@panel_view(PERM_VIEW)
def outbox(request: HttpRequest) -> HttpResponse:
    return render(request, "panel/outbox.html", _listing(request))


def _listing(request: HttpRequest, **more) -> dict:
    current = request.GET.get("state", DEFAULT_FILTER)
    if current not in FILTERS:
        current = DEFAULT_FILTER
    rows = _rows()
    states = FILTERS[current][1]
    if states is not None:
        rows = rows.filter(state__in=states)
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    return {
        "filters": _filters(current),
        "current": current,
        "page": page,
        "items": [Shown(row) for row in page],
        "back": reverse("outbox") if request.method == "POST" else request.get_full_path(),
        "admin_address": spool.admin_address(delivery.root()),
        **more,
    }


@require_POST
@panel_view(PERM_CHANGE)
def outbox_admin_address(request: HttpRequest) -> HttpResponse:
    """Where mail to root and the recovery alert go; the same file as install_sendmail's
    --admin-address, so xmail-sendmail (which reads no database) knows it."""
    address = request.POST.get("address", "").strip()
    try:
        validate_email(address)
        spool.write_admin_address(delivery.root(), address)
    except (ValidationError, OSError) as exc:
        if isinstance(exc, ValidationError):
            error = _("“%(address)s” is not an e-mail address: nothing was changed.") % {
                "address": address or "—"
            }
        else:
            error = _("The outbox folder cannot be written (%(error)s): nothing was changed.") % {
                "error": exc.strerror or exc
            }
        # The page again with what was typed, so nothing typed is lost.
        context = _listing(request, admin_address_typed=address, admin_address_error=error)
        return render(request, "panel/outbox.html", context, status=400)
    AuditEntry.record(request.user, AuditEntry.Action.ADMIN_ADDRESS, target=address)
    messages.success(request, _("Admin address saved: %(address)s") % {"address": address})
    return redirect("outbox")


@require_GET
@panel_view(PERM_VIEW)
def outbox_message(request: HttpRequest, message_id: int) -> HttpResponse:
    """One message with all its attempts: the page without JavaScript; with htmx its
    ``<tbody>`` (what "Cancel" of the discard question brings back)."""
    context = {"m": Shown(_message(message_id)), "back": _back(request)}
    if request.htmx:
        return render(request, "panel/outbox.html#message", context)
    return render(request, "panel/outbox.html", {**context, "single": True})


@require_GET
@panel_view(PERM_VIEW)
def outbox_tries(request: HttpRequest, message_id: int) -> HttpResponse:
    """The attempts, opened in place below the message's row."""
    return render(request, "panel/outbox.html#tries", {"m": Shown(_message(message_id))})


@require_GET
@panel_view(PERM_VIEW)
def outbox_row(request: HttpRequest, message_id: int) -> HttpResponse:
    """The summary row, polled while the message waits; 286 stops the polling once final."""
    shown = Shown(_message(message_id))
    response = render(request, "panel/outbox.html#summary", {"m": shown, "back": _back(request)})
    if not shown.poll:
        response.status_code = HttpResponseStopPolling.status_code
    return response


# --- what administrators do --------------------------------------------------------------


@require_POST
@panel_view(PERM_CHANGE)
def outbox_retry(request: HttpRequest, message_id: int) -> HttpResponse:
    row = _message(message_id)
    if row.state == Outbox.SENDING:
        return _answer(request, row, "error", _("This message is being sent right now."))
    if not delivery.retry(row, by=request.user):
        return _answer(
            request,
            row,
            "error",
            _("This message cannot be retried: it was delivered or discarded, its file is gone."),
        )
    if _start_delivery():
        return _answer(request, row, "success", _("The message is due now: a delivery started."))
    text = _(
        "The message is due now, but the broker did not take the delivery job: the worker "
        "sends it at its next look into the outbox (every %(seconds)s s)."
    ) % {"seconds": settings.XMAILADMIN_OUTBOX_SCAN}
    return _answer(request, row, "warning", text)


@require_POST
@panel_view(PERM_CHANGE)
def outbox_discard(request: HttpRequest, message_id: int) -> HttpResponse:
    row = _message(message_id)
    if row.state in (Outbox.DELIVERED, Outbox.DISCARDED):
        return _answer(request, row, "error", _("This message was delivered or discarded already."))
    if request.POST.get("confirm") != "1":
        # Asked on the page, as deleting an account is: no browser confirm() box.
        context = {"m": Shown(row), "confirm": True, "back": _back(request)}
        if request.htmx:
            return render(request, "panel/outbox.html#message", context)
        return render(request, "panel/outbox.html", {**context, "single": True})
    if not delivery.discard(row, by=request.user):
        return _answer(
            request, row, "error", _("This message is being sent right now: try again in a moment.")
        )
    return _answer(request, row, "success", _("Message discarded: it will not be sent."))


def _start_delivery() -> bool:
    """Queue a delivery now; False when the broker is away (the worker's own look into
    the outbox, every XMAILADMIN_OUTBOX_SCAN seconds, finds the due message then)."""
    try:
        tasks.deliver_outbox.delay()
    except Exception as exc:  # kombu raises several kinds for a dead broker
        health.forget_broker_state()
        log.warning("outbox: could not queue a delivery: %s", exc)
        return False
    return True


def _answer(request: HttpRequest, row: OutboxMessage, level: str, text: str) -> HttpResponse:
    """The outcome: in the message's ``<tbody>`` (htmx), or as a message on the list."""
    if request.htmx:
        context = {"m": Shown(_message(row.pk)), "note": text, "note_level": level}
        return render(request, "panel/outbox.html#message", {**context, "back": _back(request)})
    messages.add_message(request, LEVELS[level], text)
    return redirect(_back(request))


# --- the overview's outbox line ------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What the overview says about the outbox."""

    waiting: int
    oldest: OutboxMessage | None
    bounced_recently: int

    @property
    def oldest_age(self) -> str:
        if self.oldest is None:
            return ""
        return duration(self.oldest.submitted_at, timezone.now(), dative=True)

    @property
    def late(self) -> bool:
        """The oldest waiting message is older than XMAILADMIN_OUTBOX_WARN_AGE."""
        if self.oldest is None:
            return False
        age = (timezone.now() - self.oldest.submitted_at).total_seconds()
        return age >= settings.XMAILADMIN_OUTBOX_WARN_AGE

    @property
    def warning(self) -> str:
        if not self.late:
            return ""
        values = {"age": self.oldest_age, "reason": self.oldest.explanation}
        if values["reason"]:
            return _("For %(age)s a message has been waiting in the outbox: %(reason)s") % values
        return (
            _(
                "For %(age)s a message has been waiting in the outbox and has not been tried "
                "yet: is the worker running?"
            )
            % values
        )


def summary() -> Summary:
    waiting = OutboxMessage.objects.filter(state__in=OPEN)
    since = timezone.now() - timedelta(hours=24)
    return Summary(
        waiting=waiting.count(),
        oldest=waiting.order_by("submitted_at", "id").first(),
        bounced_recently=OutboxMessage.objects.filter(
            state=Outbox.BOUNCED, finished_at__gte=since
        ).count(),
    )
