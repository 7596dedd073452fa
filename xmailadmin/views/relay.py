"""The relay servers (postfix, exim).

The page shows rows the relay tasks wrote: a check (status, differences, the generated
configuration, masked) or an apply (the same, after writing). The views read rows and
queue tasks; postconf, exim -bP and the writing happen in the worker.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import health, jobs, relay_settings, services
from ..models import (
    PERM_CHANGE,
    PERM_RUN,
    PERM_VIEW,
    Account,
    ProbeRun,
    RelayJob,
    Server,
    State,
    TestSend,
)
from .common import current_server, notice, panel_view, poll_every, polled, selected_account


def _relay_mta(mta: str) -> str:
    if mta not in relay_settings.MTAS:
        raise Http404
    return mta


def _relay_url(mta: str, account: Account | None) -> str:
    url = reverse("relay", args=[mta])
    return f"{url}?account={account.pk}" if account else url


def _relay_send(mta: str, account: Account | None, server: Server) -> TestSend | None:
    if account is None:
        return None
    return TestSend.objects.filter(server=server, account=account, command=mta).first()


def _posted_account(request: HttpRequest) -> Account:
    try:
        return get_object_or_404(Account, pk=int(request.POST.get("account", "")))
    except ValueError:
        raise Http404 from None


def _installed(mta: str, check: RelayJob | None, server: Server) -> bool:
    """False when the newest check, or else the last probe, found the relay missing: then
    there is nothing to write or to send through (only "check" again, once installed)."""
    if check is not None and check.status:
        return check.status.get("installed") is not False
    probe = ProbeRun.latest_finished(server)
    result = probe.results.filter(key=mta).first() if probe else None
    return result is None or result.found


def _then_run(check: RelayJob | None) -> list[str]:
    """The commands after writing the configuration by hand: a postfix that does not run
    is started, not reloaded (a reload of a stopped postfix fails)."""
    commands = list((check.config or {}).get("commands", [])) if check else []
    if check and check.mta == "postfix" and check.status.get("running") is False:
        commands = [c.removesuffix(" reload") + " start" if c.endswith(" reload") else c
                    for c in commands]  # fmt: skip
    return commands


def _relay_context(
    mta: str, account: Account | None, check: RelayJob | None, server: Server
) -> dict:
    send = _relay_send(mta, account, server)
    return {
        "mta": mta,
        "mta_label": relay_settings.LABELS[mta],
        "mtas": [(m, relay_settings.LABELS[m]) for m in relay_settings.MTAS],
        "account": account,
        "check": check,
        "check_poll": poll_every(check),
        "send": send,
        "send_poll": poll_every(send),
        "installed": _installed(mta, check or RelayJob.latest(mta, account, server), server),
        "server": server,
        "then_run": _then_run(check),
    }


@require_GET
@panel_view(PERM_VIEW)
def relay(request: HttpRequest, mta: str) -> HttpResponse:
    mta = _relay_mta(mta)
    account = selected_account(request)
    server = current_server(request)
    check = RelayJob.latest(mta, account, server)
    if check and check.active and jobs.expire_stale(server):
        check.refresh_from_db()
    context = _relay_context(mta, account, check, server)
    context.update(accounts=Account.on(server), health=health.current(server=server))
    return render(request, "panel/relay.html", context)


@require_GET
@panel_view(PERM_VIEW)
def relay_check_status(request: HttpRequest, mta: str, check_id: int) -> HttpResponse:
    """The check block, polled every second while the job runs."""
    check = get_object_or_404(RelayJob, pk=check_id, mta=_relay_mta(mta))
    context = _relay_context(mta, check.account, check, check.server)
    return polled(request, "panel/relay.html#check", context, check)


@require_POST
@panel_view(PERM_RUN)
def relay_check_start(request: HttpRequest, mta: str) -> HttpResponse:
    mta = _relay_mta(mta)
    account = _posted_account(request)
    server = current_server(request)
    try:
        check = services.start_relay_check(mta, account, request.user, server=server)
    except services.NotAccepted as exc:
        return notice(request, str(exc), back=_relay_url(mta, account))
    if request.htmx:
        context = _relay_context(mta, account, check, server)
        return render(request, "panel/relay.html#check", context)
    return redirect(_relay_url(mta, account))


def _confirmable(mta: str, raw: str | None) -> RelayJob:
    """The finished check whose configuration an administrator is asked to write."""
    try:
        check = RelayJob.objects.filter(pk=int(raw or ""), mta=mta).first()
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
        return notice(
            request,
            _("There is no finished check with a configuration to write: check the relay first."),
            back=back,
        )
    if request.method == "POST" and request.POST.get("confirm") == "1":
        try:
            services.start_relay_apply(check, request.user)
        except services.NotAccepted as exc:
            return notice(request, str(exc), back=back)
        messages.info(
            request,
            _("The configuration is being written; the result appears below."),
        )
        return redirect(back)
    context = _relay_context(mta, account, check, check.server)
    context["unconfirmed"] = request.method == "POST"
    return render(request, "panel/relay_confirm.html", context)


@require_POST
@panel_view(PERM_RUN)
def relay_test(request: HttpRequest, mta: str) -> HttpResponse:
    """A test mail through this relay's sendmail, followed until delivered or not:
    the overview's postfix/exim row, started from here."""
    mta = _relay_mta(mta)
    account = _posted_account(request)
    server = current_server(request)
    if not _installed(mta, RelayJob.latest(mta, account, server), server):
        text = _("%(name)s is not installed on this server.") % {
            "name": relay_settings.LABELS[mta]
        }
        return notice(request, text, back=_relay_url(mta, account))
    try:
        services.start_tests(account, [mta], request.user, server=server)
    except services.NotAccepted as exc:
        return notice(request, str(exc), back=_relay_url(mta, account))
    if request.htmx:
        context = _relay_context(mta, account, None, server)
        return render(request, "panel/relay.html#test", context)
    return redirect(_relay_url(mta, account))


@require_GET
@panel_view(PERM_VIEW)
def relay_test_status(request: HttpRequest, mta: str, account_id: int) -> HttpResponse:
    """The newest relay test mail, polled while it runs."""
    mta = _relay_mta(mta)
    account = get_object_or_404(Account, pk=account_id)
    context = _relay_context(mta, account, None, current_server(request))
    return polled(request, "panel/relay.html#test", context, context["send"])
