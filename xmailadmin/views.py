"""Function views: validate, call services (which enqueue tasks), render.

Every view needs a login and a role; HTMX requests get the partial of the
same template the full page uses (``"page.html#partial"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling, retarget

from transports.catalogue import BY_KEY, Entry

from . import health, pagecache, relays, services
from .forms import AccountForm, HistoryFilterForm
from .models import (
    PERM_CHANGE,
    PERM_RUN,
    PERM_VIEW,
    Account,
    AuditEntry,
    ProbeResult,
    ProbeRun,
    RelayCheck,
    State,
    TestSend,
    TransportSetting,
    label,
    remark,
    status_label,
)

View = Callable[..., HttpResponse]


def panel_view(perm: str) -> Callable[[View], View]:
    """Login required (HTMX requests are sent to the login page too), then ``perm``."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                if request.htmx:
                    return HttpResponseClientRedirect(reverse("login"))
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(perm):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def roles(request: HttpRequest) -> dict[str, bool]:
    """Context processor: what the user may do, for showing or hiding buttons."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_run": False, "can_change": False}
    return {"can_run": user.has_perm(PERM_RUN), "can_change": user.has_perm(PERM_CHANGE)}


def _notice(request: HttpRequest, text: str, back: str = "dashboard") -> HttpResponse:
    """An error in the page's notice area (HTMX), or as a message on the page ``back``."""
    if request.htmx:
        response = render(request, "panel/_notice.html", {"text": text, "level": "error"})
        return retarget(response, "#notice")
    messages.error(request, text)
    return redirect(back)


# --- dashboard ----------------------------------------------------------------


@dataclass
class CommandRow:
    setting: TransportSetting
    number: int | None  # place among the enabled commands; None when switched off
    probe: ProbeResult | None
    send: TestSend | None

    @property
    def key(self) -> str:
        return self.setting.key

    @property
    def entry(self) -> Entry:
        return BY_KEY[self.setting.key]

    @property
    def label(self) -> str:
        return label(self.entry)

    @property
    def remark(self) -> str:
        return remark(self.entry)

    @property
    def status(self) -> str:
        return status_label(self.entry)


def _selected_account(request: HttpRequest, account_id: int | None = None) -> Account | None:
    raw = account_id or request.GET.get("account")
    if raw:
        try:
            return Account.objects.filter(pk=int(raw)).first() or Account.default()
        except ValueError:
            pass
    return Account.default()


def _rows(
    account: Account | None, keys: list[str] | None = None, run: ProbeRun | None = None
) -> list[CommandRow]:
    """Commands in the order of use: enabled by position, then the switched-off ones."""
    ordered = TransportSetting.ordered()
    enabled = [s for s in ordered if s.enabled]
    numbers = {s.key: i for i, s in enumerate(enabled, start=1)}
    ordered = enabled + [s for s in ordered if not s.enabled]
    if keys is not None:
        ordered = [s for s in ordered if s.key in keys]
    run = run or ProbeRun.latest_finished()
    probes = {}
    if run is not None:
        probes = {p.key: p for p in run.results.filter(key__in=[s.key for s in ordered])}
    sends = TestSend.latest_per_command(account)
    return [
        CommandRow(s, numbers.get(s.key), probes.get(s.key), sends.get(s.key)) for s in ordered
    ]


@require_GET
@panel_view(PERM_VIEW)
def dashboard(request: HttpRequest) -> HttpResponse:
    snap = pagecache.snapshot()
    if snap.active and services.expire_stale():
        snap = pagecache.snapshot()
    state = health.current(snap.newest_heartbeat)
    roles_ = roles(request)
    key = pagecache.key(request, snap, state, roles_)
    html = pagecache.fetch(key)
    if html is None:
        account = _selected_account(request)
        last_probe = ProbeRun.latest_finished()
        context = {
            "account": account,
            "accounts": Account.objects.all(),
            "rows": _rows(account, run=last_probe),
            "health": state,
            "last_probe": last_probe,
            "probe": ProbeRun.objects.first(),  # the newest: active, failed or passed
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
    account = _selected_account(request, account_id)
    context = {"account": account, "rows": _rows(account)}
    return render(request, "panel/dashboard.html#commands", context)


@require_GET
@panel_view(PERM_VIEW)
def command_row(request: HttpRequest, account_id: int, key: str) -> HttpResponse:
    """One row, polled every second while its test runs; 286 stops the polling."""
    if key not in BY_KEY:
        raise Http404
    account = get_object_or_404(Account, pk=account_id)
    (row,) = _rows(account, [key])
    if row.send and row.send.active and services.expire_stale():
        (row,) = _rows(account, [key])
    response = render(request, "panel/dashboard.html#row", {"account": account, "row": row})
    if row.send is None or not row.send.active:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_POST
@panel_view(PERM_RUN)
def send_one(request: HttpRequest, account_id: int, key: str) -> HttpResponse:
    if key not in BY_KEY:
        raise Http404
    account = get_object_or_404(Account, pk=account_id)
    try:
        services.ensure_worker()
        services.start_tests(account, [key], request.user)
    except services.NotAccepted as exc:
        return _notice(request, str(exc))
    if request.htmx:
        row = _rows(account, [key])[0]
        return render(request, "panel/dashboard.html#row", {"account": account, "row": row})
    return redirect(f"{reverse('dashboard')}?account={account.pk}")


@require_POST
@panel_view(PERM_RUN)
def send_all(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    keys = services.enabled_keys()
    if not keys:
        return _notice(request, _("No command is enabled: see Order."))
    try:
        services.ensure_worker()
        services.start_tests(account, keys, request.user)
    except services.NotAccepted as exc:
        return _notice(request, str(exc))
    if request.htmx:
        return render(
            request,
            "panel/dashboard.html#commands",
            {"account": account, "rows": _rows(account)},
        )
    return redirect(f"{reverse('dashboard')}?account={account.pk}")


@require_POST
@panel_view(PERM_RUN)
def probe_start(request: HttpRequest) -> HttpResponse:
    try:
        services.ensure_worker()
        run = services.start_probe(request.user)
    except services.NotAccepted as exc:
        return _notice(request, str(exc))
    if request.htmx:
        return render(request, "panel/dashboard.html#probe", {"probe": run})
    return redirect("dashboard")


@require_GET
@panel_view(PERM_VIEW)
def probe_status(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(ProbeRun, pk=run_id)
    if run.active:
        services.expire_stale()
        run.refresh_from_db()
    response = render(
        request,
        "panel/dashboard.html#probe",
        {"probe": run, "last_probe": ProbeRun.latest_finished()},
    )
    if not run.active:
        response.status_code = HttpResponseStopPolling.status_code
        response["HX-Trigger"] = "probe-finished"
    return response


@require_GET
@panel_view(PERM_VIEW)
def send_detail(request: HttpRequest, send_id: int) -> HttpResponse:
    send = get_object_or_404(TestSend, pk=send_id)
    if request.htmx:
        return render(request, "panel/send.html#transcript", {"send": send})
    return render(request, "panel/send.html", {"send": send})


# --- accounts -----------------------------------------------------------------


@require_GET
@panel_view(PERM_VIEW)
def account_list(request: HttpRequest) -> HttpResponse:
    return render(request, "panel/accounts.html", {"accounts": Account.objects.all()})


@panel_view(PERM_CHANGE)
def account_edit(request: HttpRequest, account_id: int | None = None) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id) if account_id else None
    form = AccountForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        created = account is None
        changed = form.changed_fields()
        saved = form.save()
        AuditEntry.record(
            request.user,
            AuditEntry.Action.ACCOUNT_CREATED if created else AuditEntry.Action.ACCOUNT_CHANGED,
            target=saved.name,
            detail=", ".join(changed),
        )
        messages.success(request, _("Account “%(name)s” saved.") % {"name": saved.name})
        for warning in account_warnings(saved):
            messages.warning(request, warning)
        return redirect("accounts")
    return render(request, "panel/account_form.html", {"form": form, "account": account})


def account_warnings(account: Account) -> list[str]:
    warnings = []
    if account.mode_mismatch:
        warnings.append(
            _(
                "Port %(port)d with %(mode)s differs from the rule (465 = SMTPS, "
                "otherwise STARTTLS). That is allowed, but check it."
            )
            % {"port": account.port, "mode": account.get_effective_mode_display()}
        )
    if not account.verify:
        warnings.append(
            _(
                "Certificate verification is switched off for this account: use that only "
                "to narrow down a problem."
            )
        )
    return warnings


@require_POST
@panel_view(PERM_CHANGE)
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    name = account.name
    account.delete()
    AuditEntry.record(request.user, AuditEntry.Action.ACCOUNT_DELETED, target=name)
    messages.success(request, _("Account “%(name)s” deleted.") % {"name": name})
    return redirect("accounts")


@require_POST
@panel_view(PERM_CHANGE)
def account_default(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    account.make_default()
    AuditEntry.record(request.user, AuditEntry.Action.ACCOUNT_DEFAULT, target=account.name)
    return redirect("accounts")


# --- preferred order ----------------------------------------------------------


def _order_context(
    proposal: services.OrderProposal, confirm_key: str | None = None
) -> dict:
    run = ProbeRun.latest_finished()
    found = None if run is None else {r.key: r.found for r in run.results.all()}
    items = []
    for key in proposal.order:
        entry = BY_KEY[key]
        items.append(
            {
                "key": key,
                "label": label(entry),
                "status": status_label(entry),
                "unsuitable": entry.unsuitable,
                "enabled": key in proposal.enabled,
                "found": None if found is None else found.get(key, False),
            }
        )
    return {
        "items": items,
        "first_used": proposal.first_used,
        "confirm_key": confirm_key,
        "confirm_label": label(BY_KEY[confirm_key]) if confirm_key else "",
        "probed": run is not None,
    }


def _apply_order(
    request: HttpRequest, new: services.OrderProposal, action: str, detail: str
) -> HttpResponse:
    """Save ``new`` unless it makes an unsuitable command first without confirmation."""
    old = services.current_order()
    confirm_key = services.needs_confirmation(old, new)
    if confirm_key and request.POST.get("confirm") != "1":
        context = _order_context(new, confirm_key)
        template = "panel/order.html#list" if request.htmx else "panel/order.html"
        return render(request, template, context)
    services.save_order(new)
    AuditEntry.record(request.user, action, target=_("Order"), detail=detail)
    if request.htmx:
        return render(request, "panel/order.html#list", _order_context(new))
    return redirect("order")


@panel_view(PERM_VIEW)
def order(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not request.user.has_perm(PERM_CHANGE):
            raise PermissionDenied
        new = services.proposal_from(request.POST.getlist("order"), request.POST.getlist("on"))
        if new is None:
            return _notice(request, _("Invalid order."), back="order")
        return _apply_order(
            request, new, AuditEntry.Action.ORDER_CHANGED, " > ".join(new.order)
        )
    return render(request, "panel/order.html", _order_context(services.current_order()))


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
    new = services.moved(services.current_order(), key, step)
    return _apply_order(request, new, AuditEntry.Action.ORDER_CHANGED, " > ".join(new.order))


@require_POST
@panel_view(PERM_CHANGE)
def order_toggle(request: HttpRequest) -> HttpResponse:
    key = _posted_key(request)
    new = services.toggled(services.current_order(), key)
    state = _("on") if key in new.enabled else _("off")
    return _apply_order(request, new, AuditEntry.Action.COMMAND_TOGGLED, f"{key}: {state}")


@require_POST
@panel_view(PERM_CHANGE)
def order_reset(request: HttpRequest) -> HttpResponse:
    new = services.vendor_recommendation()
    enabled = ", ".join(k for k in new.order if k in new.enabled)
    return _apply_order(request, new, AuditEntry.Action.ORDER_RESET, enabled)


# --- history ------------------------------------------------------------------


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
    page = Paginator(sends, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "sends": page,
        "probes": probes[:50],
        "audit": audit[:100],
        "query": query,
    }
    if request.htmx and request.htmx.target == "history-results":
        return render(request, "panel/history.html#results", context)
    return render(request, "panel/history.html", context)


# --- relay servers (postfix, exim) ----------------------------------------------------
#
# The page shows rows the relay tasks wrote: a check (status, differences, the generated
# configuration, masked) or an apply (the same, after writing). The views read rows and
# queue tasks; postconf, exim -bP and the writing happen in the worker.


def _relay_mta(mta: str) -> str:
    if mta not in relays.MTAS:
        raise Http404
    return mta


def _relay_url(mta: str, account: Account | None) -> str:
    url = reverse("relay", args=[mta])
    return f"{url}?account={account.pk}" if account else url


def _relay_send(mta: str, account: Account | None) -> TestSend | None:
    if account is None:
        return None
    return TestSend.objects.filter(account=account, command=mta).first()


def _posted_account(request: HttpRequest) -> Account:
    try:
        return get_object_or_404(Account, pk=int(request.POST.get("account", "")))
    except ValueError:
        raise Http404 from None


def _relay_context(mta: str, account: Account | None, check: RelayCheck | None) -> dict:
    return {
        "mta": mta,
        "mta_label": relays.LABELS[mta],
        "mtas": [(m, relays.LABELS[m]) for m in relays.MTAS],
        "account": account,
        "check": check,
        "send": _relay_send(mta, account),
    }


@require_GET
@panel_view(PERM_VIEW)
def relay(request: HttpRequest, mta: str) -> HttpResponse:
    mta = _relay_mta(mta)
    account = _selected_account(request)
    check = RelayCheck.latest(mta, account)
    if check and check.active and services.expire_stale():
        check.refresh_from_db()
    context = _relay_context(mta, account, check)
    context.update(accounts=Account.objects.all(), health=health.current())
    return render(request, "panel/relay.html", context)


@require_GET
@panel_view(PERM_VIEW)
def relay_check_status(request: HttpRequest, mta: str, check_id: int) -> HttpResponse:
    """The check block, polled every second while the job runs; 286 stops the polling."""
    check = get_object_or_404(RelayCheck, pk=check_id, mta=_relay_mta(mta))
    if check.active and services.expire_stale():
        check.refresh_from_db()
    response = render(
        request, "panel/relay.html#check", _relay_context(mta, check.account, check)
    )
    if not check.active:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_POST
@panel_view(PERM_RUN)
def relay_check_start(request: HttpRequest, mta: str) -> HttpResponse:
    mta = _relay_mta(mta)
    account = _posted_account(request)
    try:
        services.ensure_worker()
        check = services.start_relay_check(mta, account, request.user)
    except services.NotAccepted as exc:
        return _notice(request, str(exc), back=_relay_url(mta, account))
    if request.htmx:
        return render(request, "panel/relay.html#check", _relay_context(mta, account, check))
    return redirect(_relay_url(mta, account))


def _confirmable(mta: str, raw: str | None) -> RelayCheck:
    """The finished check whose configuration an administrator is asked to write."""
    try:
        check = RelayCheck.objects.filter(pk=int(raw or ""), mta=mta).first()
    except ValueError:
        check = None
    if check is None or check.account is None:
        raise Http404
    return check


@require_http_methods(["GET", "POST"])
@panel_view(PERM_CHANGE)
def relay_apply(request: HttpRequest, mta: str) -> HttpResponse:
    """GET: exactly what would be written, and a confirmation form. POST with
    ``confirm=1``: queue the write. A POST without it only shows the page again."""
    mta = _relay_mta(mta)
    source = request.POST if request.method == "POST" else request.GET
    check = _confirmable(mta, source.get("check"))
    account = check.account
    back = _relay_url(mta, account)
    if check.active or check.state == State.FAILED or not check.config:
        return _notice(
            request,
            _("There is no finished check with a configuration to write: check the relay first."),
            back=back,
        )
    if request.method == "POST" and request.POST.get("confirm") == "1":
        try:
            services.ensure_worker()
            services.start_relay_apply(check, request.user)
        except services.NotAccepted as exc:
            return _notice(request, str(exc), back=back)
        messages.info(
            request,
            _("The configuration is being written; the result appears below."),
        )
        return redirect(back)
    context = _relay_context(mta, account, check)
    context["unconfirmed"] = request.method == "POST"
    return render(request, "panel/relay_confirm.html", context)


@require_POST
@panel_view(PERM_RUN)
def relay_test(request: HttpRequest, mta: str) -> HttpResponse:
    """A test mail through this relay's sendmail, followed until delivered or not:
    the overview's postfix/exim row, started from here."""
    mta = _relay_mta(mta)
    account = _posted_account(request)
    try:
        services.ensure_worker()
        services.start_tests(account, [mta], request.user)
    except services.NotAccepted as exc:
        return _notice(request, str(exc), back=_relay_url(mta, account))
    if request.htmx:
        return render(request, "panel/relay.html#test", _relay_context(mta, account, None))
    return redirect(_relay_url(mta, account))


@require_GET
@panel_view(PERM_VIEW)
def relay_test_status(request: HttpRequest, mta: str, account_id: int) -> HttpResponse:
    """The newest relay test mail, polled while it runs; 286 stops the polling."""
    mta = _relay_mta(mta)
    account = get_object_or_404(Account, pk=account_id)
    send = _relay_send(mta, account)
    if send and send.active and services.expire_stale():
        send.refresh_from_db()
    response = render(request, "panel/relay.html#test", _relay_context(mta, account, None))
    if send is None or not send.active:
        response.status_code = HttpResponseStopPolling.status_code
    return response
