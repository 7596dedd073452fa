"""The SMTP accounts the test mails are sent with."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import retarget

from transports.mode_probe import detect_mode

from ..forms import (
    DETECTION_FIELD,
    KEPT_FIELD,
    AccountForm,
    KeptPasswords,
    ModeDetectForm,
    detection_ticket,
)
from ..models import MODE_LABELS, PERM_CHANGE, PERM_VIEW, Account, AuditEntry, Server
from .common import current_server, notice, panel_view

# The form waits for "Detect the mode" (a gunicorn worker with it): a server that neither
# greets nor answers TLS within this is said so, not waited for like a test send.
DETECT_TIMEOUT = 5.0
DETECT_GREETING_WAIT = 2.0


@require_GET
@panel_view(PERM_VIEW)
def account_list(request: HttpRequest) -> HttpResponse:
    return render(request, "panel/accounts.html", _list_context(request))


def _list_context(request: HttpRequest, **more) -> dict:
    """Every account, each marked with the server it is used on; the shown server, to
    which one of another server's can be copied."""
    return {
        "accounts": Account.objects.select_related("used_on"),
        "server": current_server(request),
        "servers": Server.objects.count(),
        **more,
    }


@panel_view(PERM_CHANGE)
def account_edit(request: HttpRequest, account_id: int | None = None) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id) if account_id else None
    kept = KeptPasswords(request.session)
    ticket = request.POST.get(KEPT_FIELD, "")
    form = AccountForm(request.POST or None, instance=account, kept_password=kept.get(ticket))
    if request.method == "POST" and form.is_valid():
        form.instance.audit_as = (request.user, ", ".join(form.changed_fields()))
        saved = form.save()
        kept.drop(ticket)
        messages.success(request, _("Account “%(name)s” saved.") % {"name": saved.name})
        for warning in account_warnings(saved):
            messages.warning(request, warning)
        return redirect("accounts")
    if form.is_bound and form.cleaned_data.get("password"):
        # Another field failed: the next try need not ask for the password again.
        ticket = kept.keep(form.cleaned_data["password"], ticket)
        form.show_password_kept()
    context = {
        "form": form,
        "account": account,
        "kept_ticket": ticket if form.is_bound else "",
        "detection": request.POST.get(DETECTION_FIELD, ""),
    }
    return render(request, "panel/account_form.html", context)


def account_warnings(account: Account) -> list[str]:
    warnings = [account.mode_warning] if account.mode_warning else []
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
def account_detect_mode(request: HttpRequest) -> HttpResponse:
    """One connection to the host and port typed into the account form: which mode the
    server expects. Answers the form's partial, with a signed note of the outcome that
    the form saves with the account."""
    form = ModeDetectForm(request.POST)
    context: dict = {"detect_form": form}
    if form.is_valid():
        host, port = form.cleaned_data["host"], form.cleaned_data["port"]
        finding = detect_mode(
            host, port, timeout=DETECT_TIMEOUT, greeting_wait=DETECT_GREETING_WAIT
        )
        context["finding"] = finding
        if finding.mode is not None:
            context["detection"] = detection_ticket(host, port, finding.mode)
            context["mode_label"] = MODE_LABELS[finding.mode]
    return render(request, "panel/account_form.html#detection", context)


@require_POST
@panel_view(PERM_CHANGE)
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    if request.POST.get("confirm") != "1":
        # Asked on the page, as the order page asks: no browser confirm() box.
        context = _list_context(request, confirm_delete=account)
        if request.htmx:
            response = render(request, "panel/accounts.html#delete-confirm", context)
            return retarget(response, "#account-confirm")
        return render(request, "panel/accounts.html", context)
    name = account.name
    account.audit_as = (request.user, "")
    account.delete()
    messages.success(request, _("Account “%(name)s” deleted.") % {"name": name})
    return redirect("accounts")


@require_POST
@panel_view(PERM_CHANGE)
def account_default(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    account.make_default()
    AuditEntry.record(request.user, AuditEntry.Action.ACCOUNT_DEFAULT, target=account.name)
    return redirect("accounts")


# The fields a copy takes over; the name gets the server's, the default flag stays behind.
COPIED = ("host", "port", "mode", "username", "password_encrypted", "sender",
          "recipient", "ca_file", "tls_name", "verify", "detected_mode", "detected_for",
          "detected_at")  # fmt: skip


@require_POST
@panel_view(PERM_CHANGE)
def account_copy(request: HttpRequest, account_id: int) -> HttpResponse:
    """Another server's account, copied for the shown server (the password with it,
    still encrypted): the same settings, used only there, changed there on its own."""
    source = get_object_or_404(Account, pk=account_id)
    server = current_server(request)
    copy = Account(**{name: getattr(source, name) for name in COPIED}, used_on=server)
    copy.name = _free_name(f"{source.name} @ {server.name}")
    copy.audit_as = (request.user, f"copied from {source.name}")
    try:
        copy.save()
    except ValidationError as exc:
        return notice(request, " ".join(exc.messages), back="accounts")
    messages.success(request, _("“%(name)s” is now also an account of %(server)s, as “%(copy)s”.")
                     % {"name": source.name, "server": server.name, "copy": copy.name})  # fmt: skip
    return redirect("accounts")


def _free_name(wanted: str) -> str:
    name, n = wanted[:100], 2
    while Account.objects.filter(name=name).exists():
        suffix = f" {n}"
        name, n = wanted[: 100 - len(suffix)] + suffix, n + 1
    return name
