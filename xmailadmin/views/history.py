"""The history: test sends, probes and the audit log, filtered."""

from __future__ import annotations

from datetime import datetime, time

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from transports.catalogue import BY_KEY

from .. import charts
from ..forms import HistoryFilterForm
from ..models import PERM_VIEW, AuditEntry, ProbeRun, TestSend
from ..texts import say
from .common import panel_view

CHART_POINTS = 50


@require_GET
@panel_view(PERM_VIEW)
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    sends = TestSend.objects.select_related("requested_by")
    probes = ProbeRun.objects.select_related("requested_by").annotate(
        found_count=Count("results", filter=Q(results__found=True))
    )
    audit = AuditEntry.objects.all()
    if form.is_valid():
        data = form.cleaned_data
        if data["command"]:
            sends = sends.filter(command=data["command"])
        if data["result"]:
            sends = sends.filter(state=data["result"])
            probes = probes.filter(state=data["result"])
        if data["account"]:
            sends = sends.filter(account=data["account"])
        tz = timezone.get_current_timezone()
        if data["since"]:
            start = datetime.combine(data["since"], time.min, tzinfo=tz)
            sends = sends.filter(created_at__gte=start)
            probes = probes.filter(created_at__gte=start)
            audit = audit.filter(at__gte=start)
        if data["until"]:
            end = datetime.combine(data["until"], time.max, tzinfo=tz)
            sends = sends.filter(created_at__lte=end)
            probes = probes.filter(created_at__lte=end)
            audit = audit.filter(at__lte=end)
    account = form.cleaned_data["account"] if form.is_valid() else None
    command = form.cleaned_data["command"] if form.is_valid() else ""
    page = Paginator(sends, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "sends": page,
        "probes": probes[:50],
        "audit": audit[:100],
        "query": query,
        "charts": _charts(account, command),
    }
    if request.htmx and request.htmx.target == "history-results":
        return render(request, "panel/history.html#results", context)
    return render(request, "panel/history.html", context)


def _charts(account, command: str) -> list[dict]:
    """Per command (the one filtered for, or every command tested), its last results."""
    found = charts.history(account, [command] if command else None, points=CHART_POINTS)
    return [{"label": say(BY_KEY[key].label), "key": key,
             "svg": charts.svg(points, say(BY_KEY[key].label))}
            for key in BY_KEY if (points := found.get(key))]  # fmt: skip
