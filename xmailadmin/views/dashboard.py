"""The overview: the mail commands for one account, their probe and their test sends."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from transports.catalogue import BY_KEY, Entry

from .. import charts, crypto, health, health_check, jobs, pagecache, services
from ..context_processors import roles
from ..models import (
    PERM_CHANGE,
    PERM_RUN,
    PERM_VIEW,
    Account,
    ProbeResult,
    ProbeRun,
    Server,
    TestSend,
    TransportSetting,
)
from ..order import enabled_keys
from ..status_line import status_line
from ..texts import say
from .common import (
    chosen_server,
    current_server,
    notice,
    panel_view,
    poll_every,
    polled,
    selected_account,
)
from .outbox import summary as outbox_summary

# The client event of a test that starts or ends: the status line fetches itself anew.
SENDS_CHANGED = "sends-changed"


@dataclass
class CommandRow:
    setting: TransportSetting
    number: int | None  # place among the enabled commands; None when switched off
    probe: ProbeResult | None
    send: TestSend | None
    history: list[charts.Point] = field(default_factory=list)  # the chart's, oldest first

    @property
    def chart(self) -> str:
        return charts.svg(self.history, say(self.entry.label))

    @property
    def key(self) -> str:
        return self.setting.key

    @property
    def entry(self) -> Entry:
        return BY_KEY[self.setting.key]

    @property
    def sendable(self) -> bool:
        """A test is offered unless the last probe found the command missing."""
        return self.probe is None or self.probe.found

    @property
    def poll(self) -> str:
        """The delay of the row's next poll; "" when it is not polled."""
        return poll_every(self.send)

    @property
    def elapsed(self) -> int | None:
        """Whole seconds since the click, while the test runs."""
        if self.send is None or not self.send.active:
            return None
        return int((timezone.now() - self.send.created_at).total_seconds())


def _rows(
    account: Account | None,
    keys: list[str] | None = None,
    run: ProbeRun | None = None,
    server: Server | None = None,
) -> list[CommandRow]:
    """Commands in ``server``'s order of use (``command_rows``), with its last probe and
    tests (this machine's if None)."""
    server = server or Server.local()
    ordered = TransportSetting.ordered(server)
    wanted = [s.key for s in ordered if keys is None or s.key in keys]
    run = run or ProbeRun.latest_finished(server)
    probes = {}
    if run is not None:
        probes = {p.key: p for p in run.results.filter(key__in=wanted)}
    return command_rows(ordered, probes, _latest_sends(account, keys, server), keys)


def command_rows(
    ordered: list[TransportSetting],
    probes: dict[str, ProbeResult],
    sends: dict[str, TestSend],
    keys: list[str] | None = None,
) -> list[CommandRow]:
    """Enabled commands by position, then the switched-off ones (numbered among the
    enabled only); of ``keys`` alone when given. A support bundle's rows come here too."""
    enabled = [s for s in ordered if s.enabled]
    numbers = {s.key: i for i, s in enumerate(enabled, start=1)}
    ordered = enabled + [s for s in ordered if not s.enabled]
    if keys is not None:
        ordered = [s for s in ordered if s.key in keys]
    return [CommandRow(s, numbers.get(s.key), probes.get(s.key), sends.get(s.key)) for s in ordered]


def with_history(
    rows: list[CommandRow], account: Account | None, server: Server | None = None
) -> list[CommandRow]:
    """The rows with their charts' points (one query for all of them)."""
    found = {}
    if account is not None:
        found = charts.history(account, [r.key for r in rows], server=server or Server.local())
    for row in rows:
        row.history = found.get(row.key, [])
    return rows


def _latest_sends(
    account: Account | None, keys: list[str] | None, server: Server
) -> dict[str, TestSend]:
    if account is None or keys is None or len(keys) != 1:
        return TestSend.latest_per_command(account, server)
    # One row, polled several times a second while it runs: one indexed query.
    send = (
        TestSend.objects.filter(server=server, account=account, command=keys[0])
        .order_by("-id")
        .first()
    )
    return {keys[0]: send} if send else {}


@require_GET
@panel_view(PERM_VIEW)
def dashboard(request: HttpRequest) -> HttpResponse:
    chosen = chosen_server(request)  # None: this machine, with no query of its own
    chosen_id = chosen.pk if chosen else None
    snap = pagecache.snapshot(chosen_id)
    if snap.active and jobs.expire_stale(chosen):
        snap = pagecache.snapshot(chosen_id)
    state = health.current(snap.newest_heartbeat, server=chosen)
    roles_ = roles(request)
    key = pagecache.key(request, snap, state.shown, roles_, chosen_id)
    html = pagecache.fetch(key)
    if html is None:
        server = chosen or Server.local()
        account = selected_account(request)
        last_probe = ProbeRun.latest_finished(server)
        rows = _rows(account, run=last_probe, server=server)
        with_history(rows, account, server)
        accounts = list(Account.on(server))
        context = {
            "account": account,
            "accounts": accounts,
            # A lost or replaced key (settings.FERNET_KEYS): say so before a test fails.
            "unreadable": [a for a in accounts if not crypto.readable(a.password_encrypted)],
            "key_source": settings.FERNET_KEY_SOURCE,
            "rows": rows,
            "status": status_line(account, rows),
            "health": state,
            "last_probe": last_probe,
            "probe": ProbeRun.objects.filter(server=server).first(),  # active, failed or passed
            "outbox": outbox_summary(),  # in the snapshot (pagecache): cached with the rest
            "checkup": health_check.state_of(server),
            "server": server,
            "servers": Server.objects.count(),
            "checkup_every": settings.XMAILADMIN_HEALTH_INTERVAL // 60,
            "csrf_token": pagecache.CSRF_PLACEHOLDER,
            **roles_,
        }
        html = render_to_string("panel/dashboard.html", context, request=request)
        pagecache.store(key, html)
    return pagecache.response(request, html)


@require_GET
@panel_view(PERM_VIEW)
def commands(request: HttpRequest, account_id: int) -> HttpResponse:
    """The command table alone: reloaded when a probe finishes."""
    account = selected_account(request, account_id)
    server = current_server(request)
    rows = with_history(_rows(account, server=server), account, server)
    context = {"account": account, "rows": rows}
    return render(request, "panel/dashboard.html#commands", context)


@require_GET
@panel_view(PERM_VIEW)
def command_row(request: HttpRequest, account_id: int, key: str) -> HttpResponse:
    """One row, polled every second while its test runs."""
    if key not in BY_KEY:
        raise Http404
    account = get_object_or_404(Account, pk=account_id)
    server = current_server(request)
    (row,) = _rows(account, [key], server=server)
    if row.send is None or not row.send.active:  # the last poll: the chart is new too
        with_history([row], account, server)
    context = {"account": account, "row": row}
    response = polled(request, "panel/dashboard.html#row", context, row.send)
    if row.send is not None and not row.send.active:
        trigger_client_event(response, SENDS_CHANGED)
    return response


@require_POST
@panel_view(PERM_RUN)
def send_one(request: HttpRequest, account_id: int, key: str) -> HttpResponse:
    if key not in BY_KEY:
        raise Http404
    account = get_object_or_404(Account, pk=account_id)
    try:
        services.start_tests(account, [key], request.user, server=current_server(request))
    except services.NotAccepted as exc:
        return notice(request, str(exc))
    return _row_started(request, account, key)


def _row_started(request: HttpRequest, account: Account, key: str) -> HttpResponse:
    if request.htmx:
        row = _rows(account, [key], server=current_server(request))[0]
        response = render(request, "panel/dashboard.html#row", {"account": account, "row": row})
        return trigger_client_event(response, SENDS_CHANGED)
    return redirect(f"{reverse('dashboard')}?account={account.pk}")


@require_POST
@panel_view(PERM_RUN)
def send_retry(request: HttpRequest, account_id: int, key: str) -> HttpResponse:
    """The one-click retry the last failure of ``key`` offers (the other mode, or the
    login as sender): taken from that row, never from the request."""
    account = get_object_or_404(Account, pk=account_id)
    last = TestSend.objects.filter(account=account, command=key).first()
    offer = last.retry_offer if last else None
    if offer is None:
        return notice(request, _("There is nothing to try again for this command."))
    tried = {"mode_tried" if offer["try"] == "mode" else "sender_tried": offer["value"]}
    try:
        services.start_tests(account, [key], request.user, server=current_server(request),
                             **tried)  # fmt: skip
    except services.NotAccepted as exc:
        return notice(request, str(exc))
    return _row_started(request, account, key)


@require_POST
@panel_view(PERM_CHANGE)
def send_adopt(request: HttpRequest, send_id: int) -> HttpResponse:
    """Save for the account the mode or sender with which a one-click retry passed."""
    send = get_object_or_404(TestSend, pk=send_id)
    change = send.adoptable
    if change is None:
        return notice(request, _("This test changes nothing that could be saved."))
    account = send.account
    setattr(account, change["field"], change["value"])
    account.audit_as = (request.user, change["field"])
    account.save()
    messages.success(
        request,
        _("Saved for “%(name)s”: %(value)s. Test again to see every command with it.")
        % {"name": account.name, "value": change["label"]},
    )
    return redirect(f"{reverse('dashboard')}?account={account.pk}")


@require_POST
@panel_view(PERM_RUN)
def send_all(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    server = current_server(request)
    keys = enabled_keys(server)
    if not keys:
        return notice(request, _("No command is enabled: see Order."))
    try:
        services.start_tests(account, keys, request.user, server=server)
    except services.NotAccepted as exc:
        return notice(request, str(exc))
    if request.htmx:
        context = {"account": account, "rows": _rows(account, server=server)}
        response = render(request, "panel/dashboard.html#commands", context)
        return trigger_client_event(response, SENDS_CHANGED)
    return redirect(f"{reverse('dashboard')}?account={account.pk}")


@require_POST
@panel_view(PERM_RUN)
def probe_start(request: HttpRequest) -> HttpResponse:
    try:
        run = services.start_probe(request.user, server=current_server(request))
    except services.NotAccepted as exc:
        return notice(request, str(exc))
    if request.htmx:
        return render(request, "panel/dashboard.html#probe", {"probe": run})
    return redirect("dashboard")


@require_GET
@panel_view(PERM_VIEW)
def probe_status(request: HttpRequest, run_id: int) -> HttpResponse:
    """The probe bar while the probe runs; when it ends, the table reloads itself."""
    run = get_object_or_404(ProbeRun, pk=run_id)
    # Expiring only fails rows, so the last passed probe may be read before polled().
    context = {"probe": run, "last_probe": ProbeRun.latest_finished(run.server)}
    response = polled(request, "panel/dashboard.html#probe", context, run)
    if not run.active:
        trigger_client_event(response, "probe-finished")
    return response


@require_GET
@panel_view(PERM_VIEW)
def send_detail(request: HttpRequest, send_id: int) -> HttpResponse:
    send = get_object_or_404(TestSend, pk=send_id)
    if request.htmx:
        return render(request, "panel/send.html#transcript", {"send": send})
    return render(request, "panel/send.html", {"send": send})
