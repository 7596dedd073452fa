"""The fleet: every server with a worker of its own, and which of them need attention.

Each server's worker takes the jobs of that server from its own queue and registers the
server itself when it starts (signals.py, ``XMAILADMIN_SERVER_NAME``). This page shows
them side by side (online or not, the mail commands found, which lack TLS 1.2, the last
tests, the scheduled check, the outbox) and lets the reader choose the server the other
pages show and send jobs to (``?server=ID`` on the overview, kept in the session).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from transports.catalogue import BY_KEY

from .. import health, health_check, order
from ..models import (
    PERM_VIEW,
    Account,
    HealthState,
    Outbox,
    OutboxMessage,
    ProbeRun,
    Server,
    State,
    TestSend,
    WorkerHeartbeat,
)
from ..texts import say
from .common import current_server, panel_view

OPEN = (Outbox.WAITING, Outbox.SENDING)


@dataclass
class FleetRow:
    server: Server
    alive: bool
    seen_at: datetime | None
    workers: list[str]
    probed: bool
    found: int
    without_tls12: list[str]  # labels of enabled, found commands without TLS 1.2
    passed: int
    failing: list[str]  # labels of commands whose last test failed
    checkup: HealthState | None
    waiting: int
    oldest: datetime | None
    growing: bool  # more came into the outbox in the last hour than left it

    @property
    def attention(self) -> bool:
        return (not self.alive or bool(self.failing) or bool(self.without_tls12)
                or self.growing or bool(self.checkup and self.checkup.failing_since))  # fmt: skip


@require_GET
@panel_view(PERM_VIEW)
def servers(request: HttpRequest) -> HttpResponse:
    rows = [fleet_row(server, Account.default(server)) for server in Server.objects.all()]
    context = {"rows": rows, "current": current_server(request),
               "attention": sum(r.attention for r in rows)}  # fmt: skip
    return render(request, "panel/servers.html", context)


def fleet_row(server: Server, account: Account | None) -> FleetRow:
    state = health.current(server=server)
    fresh = WorkerHeartbeat.fresh_since()
    beats = WorkerHeartbeat.objects.filter(server=server, seen_at__gte=fresh)
    probe = ProbeRun.latest_finished(server)
    results = list(probe.results.filter(found=True)) if probe else []
    enabled = set(order.enabled_keys(server))
    sends = TestSend.latest_per_command(account, server).values()
    outbox = OutboxMessage.objects.filter(server=server)
    waiting = outbox.filter(state__in=OPEN)
    oldest = waiting.order_by("submitted_at").values_list("submitted_at", flat=True).first()
    hour = timezone.now() - timedelta(hours=1)
    came = outbox.filter(submitted_at__gte=hour).count()
    left = outbox.exclude(state__in=OPEN).filter(finished_at__gte=hour).count()
    return FleetRow(
        server=server,
        alive=state.worker_alive,
        seen_at=state.worker_seen_at,  # the heartbeat, else the server's last_seen
        workers=sorted(beats.values_list("hostname", flat=True)),
        probed=probe is not None,
        found=len(results),
        # Of the commands its order uses: one switched off sends nothing.
        without_tls12=[_label(r.key) for r in results if r.tls12 == "no" and r.key in enabled],
        passed=sum(s.state in (State.PASSED, State.WARNING) for s in sends),
        failing=[_label(s.command) for s in sends if s.state == State.FAILED],
        checkup=health_check.state_of(server),
        waiting=waiting.count(),
        oldest=oldest,
        growing=bool(waiting.exists() and came > left),
    )


def _label(key: str) -> str:
    entry = BY_KEY.get(key)
    return say(entry.label) if entry else key
