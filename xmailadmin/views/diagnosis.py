"""Diagnosis of an account: what its server offers (no mail sent), what its sender's
domain publishes in DNS, and the TLS matrix of the mail commands against that server.

The checks run in the worker (tasks.diagnose); the views create the rows and show them,
polled while they run. "Check the server" also works from the account form, with the
values typed there before anything is saved.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from transports.base import TargetError
from transports.catalogue import CATALOGUE
from transports.dns_check import check_domain_name, check_selectors
from transports.tls_matrix import VERSIONS, CommandTls, matrix

from .. import jobs, services
from ..forms import KEPT_FIELD, KeptPasswords, ServerCheckForm
from ..models import (
    PERM_CHANGE,
    PERM_RUN,
    PERM_VIEW,
    Account,
    Diagnosis,
    ProbeResult,
    ProbeRun,
    Server,
    State,
    TestSend,
)
from ..texts import say
from .common import current_server, notice, panel_view, poll_every, polled

_MARK = {True: "✓", False: "✗", None: "?"}


def _diagnosis_url(account: Account) -> str:
    return reverse("account-diagnosis", args=[account.pk])


def job_context(row: Diagnosis | None) -> dict:
    return {"job": row, "job_poll": poll_every(row)}


@require_GET
@panel_view(PERM_VIEW)
def account_diagnosis(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    machine = current_server(request)
    server = Diagnosis.latest(account, Diagnosis.Kind.SERVER, machine)
    dns = Diagnosis.latest(account, Diagnosis.Kind.DNS, machine)
    if any(r is not None and r.active for r in (server, dns)) and jobs.expire_stale(machine):
        for row in (server, dns):
            if row is not None:
                row.refresh_from_db()
    context = {
        "account": account,
        "server": job_context(server),
        "dns": job_context(dns),
        "selectors": " ".join(dns.selectors) if dns else "",
        "matrix": tls_grid(account, server, machine),
        "probed": ProbeRun.latest_finished(machine) is not None,
        "versions": VERSIONS,
    }
    return render(request, "panel/diagnosis.html", context)


@require_POST
@panel_view(PERM_RUN)
def account_diagnose(request: HttpRequest, account_id: int, kind: str) -> HttpResponse:
    """Start the server check (with the account's stored login) or the sender-domain
    check (with the DKIM selectors typed on the page)."""
    account = get_object_or_404(Account, pk=account_id)
    if kind not in Diagnosis.Kind.values:
        raise Http404
    try:
        dns = _dns_values(account, request.POST.get("selectors", "")) if kind == "dns" else {}
    except TargetError as exc:
        return notice(request, say(exc.text), back=_diagnosis_url(account))
    row = Diagnosis(
        server=current_server(request),
        kind=kind,
        account=account,
        account_name=account.name,
        host=account.host,
        port=account.port,
        mode=account.mode,
        ca_file=account.ca_file,
        username=account.username,
        use_login=account.has_password and kind == Diagnosis.Kind.SERVER,
        sender=account.sender,
        **dns,
    )
    try:
        services.start_diagnosis(row, request.user)
    except services.NotAccepted as exc:
        return notice(request, str(exc), back=_diagnosis_url(account))
    if request.htmx:
        return render(request, "panel/diagnosis.html#job", job_context(row))
    return redirect(_diagnosis_url(account))


def _dns_values(account: Account, typed: str) -> dict:
    """The sender's domain (the login's when no sender is set) and the DKIM selectors
    typed (commas or spaces between them); TargetError says what is wrong."""
    address = account.sender or account.username
    domain = check_domain_name(address.rsplit("@", 1)[-1] if "@" in address else "")
    return {"domain": domain, "selectors": check_selectors(typed.replace(",", " ").split())}


@require_POST
@panel_view(PERM_CHANGE)
def account_form_check(request: HttpRequest) -> HttpResponse:
    """"Check the server" on the account form: the values typed there, saved or not. The
    password is optional; without one (typed, kept after a form error, or stored for the
    account being edited) the check does not try the login."""
    form = ServerCheckForm(request.POST)
    if not form.is_valid():
        return render(request, "panel/diagnosis.html#form-errors", {"check_form": form})
    data = form.cleaned_data
    account = _edited_account(request.POST.get("account_id", ""))
    password = data["password"] or KeptPasswords(request.session).get(
        request.POST.get(KEPT_FIELD, "")
    )
    stored = account is not None and account.has_password and not password
    row = Diagnosis(
        server=current_server(request),
        kind=Diagnosis.Kind.SERVER,
        account=account,
        account_name=account.name if account else "",
        host=data["host"],
        port=data["port"],
        mode=data["mode"],
        ca_file=data["ca_file"],
        username=data["username"],
        use_login=bool(data["username"]) and (bool(password) or stored),
        sender=data["sender"],
    )
    try:
        services.start_diagnosis(row, request.user, password=password)
    except services.NotAccepted as exc:
        return render(request, "panel/_notice.html", {"text": str(exc), "level": "error"})
    return render(request, "panel/diagnosis.html#job", job_context(row))


def _edited_account(raw: str) -> Account | None:
    try:
        return Account.objects.filter(pk=int(raw)).first() if raw else None
    except ValueError:
        return None


@require_GET
@panel_view(PERM_VIEW)
def diagnosis_status(request: HttpRequest, diagnosis_id: int) -> HttpResponse:
    row = get_object_or_404(Diagnosis, pk=diagnosis_id)
    return polled(request, "panel/diagnosis.html#job", job_context(row), row)


# --- the TLS matrix --------------------------------------------------------------------


def tls_grid(
    account: Account, server: Diagnosis | None, machine: Server | None = None
) -> list[dict]:
    """One row per catalogue command: the probe's library, the last test on ``account``,
    the server check's versions, and the cell's verdict in the reader's language; all of
    ``machine`` (this one if None)."""
    probe = ProbeRun.latest_finished(machine)
    results = {r.key: r for r in probe.results.all()} if probe else {}
    return tls_grid_of(results, TestSend.latest_per_command(account, machine), server)


def tls_grid_of(
    results: dict[str, ProbeResult], sends: dict[str, TestSend], server: Diagnosis | None
) -> list[dict]:
    """The grid of ``tls_grid`` from given rows (a support bundle's too)."""
    accepted = None
    if server is not None and server.state != State.QUEUED and server.report:
        accepted = server.report.get("tls_versions")
    commands = []
    for entry in CATALOGUE:
        result, send = results.get(entry.key), sends.get(entry.key)
        commands.append(
            CommandTls(
                key=entry.key,
                label=say(entry.label),
                found=bool(result and result.found),
                tls_library=result.tls_library if result else "",
                tls_library_version=result.tls_library_version if result else "",
                tls12=result.tls12 if result else "unknown",
                tls13=result.tls13 if result else "unknown",
                last_tls=(send.tls_version or None) if send else None,
                last_ok=send.state in (State.PASSED, State.WARNING) if send else None,
            )
        )
    return [
        {"cell": cell, "text": say(cell.text), "level": cell.level.value if cell.level else "",
         "library": command.library if command.found else "",
         "pairs": [((v, _MARK[cell.client[v]]),
                    _MARK[cell.server[v]] if cell.server is not None else "–")
                   for v in VERSIONS]}
        for command, cell in zip(commands, matrix(commands, accepted), strict=True)
    ]  # fmt: skip
