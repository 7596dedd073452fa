"""Django admin for administrators: users and roles; the panel's rows read-only."""

from __future__ import annotations

from django.contrib import admin

from .models import Account, AuditEntry, ProbeRun, RelayCheck, TestSend


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "host", "port", "mode", "username", "sender", "is_default"]
    exclude = ["password_encrypted"]  # the password is set in the panel, never shown


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


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


@admin.register(RelayCheck)
class RelayCheckAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "mta", "kind", "account_name", "state", "error"]
    list_filter = ["mta", "kind", "state"]
