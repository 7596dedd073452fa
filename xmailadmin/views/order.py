"""The preferred order of the mail commands, and which of them are switched on."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from transports.catalogue import BY_KEY

from ..models import PERM_CHANGE, PERM_VIEW, AuditEntry, ProbeRun, Server
from ..order import (
    OrderProposal,
    current_order,
    moved,
    needs_confirmation,
    proposal_from,
    save_order,
    toggled,
    vendor_recommendation,
)
from .common import current_server, notice, panel_view


def _order_context(
    proposal: OrderProposal, server: Server, confirm_key: str | None = None
) -> dict:
    run = ProbeRun.latest_finished(server)
    found = None if run is None else {r.key: r.found for r in run.results.all()}
    items = []
    for key in proposal.order:
        entry = BY_KEY[key]
        items.append(
            {
                "key": key,
                "label": entry.label,
                "status": entry.status_label,
                "unsuitable": entry.unsuitable,
                "enabled": key in proposal.enabled,
                "found": None if found is None else found.get(key, False),
            }
        )
    return {
        "items": items,
        "first_used": proposal.first_used,
        "confirm_key": confirm_key,
        "confirm_label": BY_KEY[confirm_key].label if confirm_key else "",
        "probed": run is not None,
        "server": server,
        "other_servers": Server.objects.exclude(pk=server.pk),
    }


def _apply_order(
    request: HttpRequest, new: OrderProposal, action: str, detail: str
) -> HttpResponse:
    """Save ``new`` as the shown server's order, unless it makes an unsuitable command
    first without confirmation."""
    server = current_server(request)
    old = current_order(server)
    confirm_key = needs_confirmation(old, new)
    if confirm_key and request.POST.get("confirm") != "1":
        context = _order_context(new, server, confirm_key)
        template = "panel/order.html#list" if request.htmx else "panel/order.html"
        return render(request, template, context)
    save_order(new, server)
    target = _("Order") if server == Server.local() else f"{_('Order')} ({server.name})"
    AuditEntry.record(request.user, action, target=target, detail=detail)
    if request.htmx:
        return render(request, "panel/order.html#list", _order_context(new, server))
    return redirect("order")


@panel_view(PERM_VIEW)
def order(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not request.user.has_perm(PERM_CHANGE):
            raise PermissionDenied
        new = proposal_from(request.POST.getlist("order"), request.POST.getlist("on"))
        if new is None:
            return notice(request, _("Invalid order."), back="order")
        return _apply_order(request, new, AuditEntry.Action.ORDER_CHANGED, " > ".join(new.order))
    server = current_server(request)
    return render(request, "panel/order.html", _order_context(current_order(server), server))


def _posted_key(request: HttpRequest) -> str:
    key = request.POST.get("key", "")
    if key not in BY_KEY:
        raise Http404
    return key


@require_POST
@panel_view(PERM_CHANGE)
def order_move(request: HttpRequest) -> HttpResponse:
    key = _posted_key(request)
    direction = request.POST.get("direction") or request.GET.get("direction")
    step = -1 if direction == "up" else 1
    new = moved(current_order(current_server(request)), key, step)
    return _apply_order(request, new, AuditEntry.Action.ORDER_CHANGED, " > ".join(new.order))


@require_POST
@panel_view(PERM_CHANGE)
def order_toggle(request: HttpRequest) -> HttpResponse:
    key = _posted_key(request)
    new = toggled(current_order(current_server(request)), key)
    state = _("on") if key in new.enabled else _("off")
    return _apply_order(request, new, AuditEntry.Action.COMMAND_TOGGLED, f"{key}: {state}")


@require_POST
@panel_view(PERM_CHANGE)
def order_reset(request: HttpRequest) -> HttpResponse:
    new = vendor_recommendation(current_server(request))
    enabled = ", ".join(k for k in new.order if k in new.enabled)
    return _apply_order(request, new, AuditEntry.Action.ORDER_RESET, enabled)


@require_POST
@panel_view(PERM_CHANGE)
def order_copy(request: HttpRequest) -> HttpResponse:
    """The shown server takes the order of another one (as one change, confirmed like any)."""
    try:
        source = Server.objects.get(pk=int(request.POST.get("source", "")))
    except (Server.DoesNotExist, ValueError):
        return notice(request, _("There is no such server."), back="order")
    new = current_order(source)
    detail = _("copied from %(server)s") % {"server": source.name} + ": " + " > ".join(new.order)
    return _apply_order(request, new, AuditEntry.Action.ORDER_CHANGED, detail)
