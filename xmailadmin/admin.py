"""Django admin for administrators: users and roles. The panel's rows are view-only.

Accounts are changed in the panel only (its pages audit every change); the audit
log is append-only for everyone, here too.
"""

from __future__ import annotations

from django.contrib import admin

from .models import Account, AuditEntry, ProbeRun, RelayJob, TestSend


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["name", "host", "port", "mode", "username", "sender", "is_default"]
    exclude = ["password_encrypted"]  # never shown, not even encrypted


@admin.register(TestSend)
class TestSendAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "command", "account_name", "state", "step", "reason"]
    list_filter = ["state", "command"]


@admin.register(ProbeRun)
class ProbeRunAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "trigger", "state", "error"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "action", "target", "detail"]
    list_filter = ["action"]


@admin.register(RelayJob)
class RelayJobAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "mta", "kind", "account_name", "state", "error"]
    list_filter = ["mta", "kind", "state"]
