"""The SMTP accounts the test mails are sent with."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from ..forms import AccountForm
from ..models import PERM_CHANGE, PERM_VIEW, Account, AuditEntry
from .common import panel_view


@require_GET
@panel_view(PERM_VIEW)
def account_list(request: HttpRequest) -> HttpResponse:
    return render(request, "panel/accounts.html", {"accounts": Account.objects.all()})


@panel_view(PERM_CHANGE)
def account_edit(request: HttpRequest, account_id: int | None = None) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id) if account_id else None
    form = AccountForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        form.instance.audit_as = (request.user, ", ".join(form.changed_fields()))
        saved = form.save()
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
