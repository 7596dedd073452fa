"""URLs of the panel. Every page needs a login (see views.common.panel_view)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import set_language

from . import views
from .views.accounts import account_copy, account_detect_mode
from .views.diagnosis import (
    account_diagnose,
    account_diagnosis,
    account_form_check,
    diagnosis_status,
)
from .views.order import order_copy
from .views.servers import servers
from .views.support import bundle_delete, bundle_download, bundle_upload, bundle_view, support


class LoginForm(AuthenticationForm):
    """Django's login form, saying plainly what went wrong."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("User name or password wrong."),
    }


urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("language/", set_language, name="set_language"),
    path("probe/", views.probe_start, name="probe-start"),
    path("probe/<int:run_id>/", views.probe_status, name="probe-status"),
    path("accounts/", views.account_list, name="accounts"),
    path("accounts/new/", views.account_edit, name="account-new"),
    path("accounts/<int:account_id>/", views.account_edit, name="account-edit"),
    path("accounts/<int:account_id>/delete/", views.account_delete, name="account-delete"),
    path("accounts/<int:account_id>/default/", views.account_default, name="account-default"),
    path("accounts/<int:account_id>/copy/", account_copy, name="account-copy"),
    path("accounts/<int:account_id>/commands/", views.commands, name="commands"),
    path("accounts/<int:account_id>/commands/<str:key>/", views.command_row, name="row"),
    path("accounts/<int:account_id>/test/", views.send_all, name="send-all"),
    path("accounts/<int:account_id>/test/<str:key>/", views.send_one, name="send-one"),
    path("accounts/<int:account_id>/retry/<str:key>/", views.send_retry, name="send-retry"),
    path("sends/<int:send_id>/", views.send_detail, name="send-detail"),
    path("sends/<int:send_id>/adopt/", views.send_adopt, name="send-adopt"),
    path("order/", views.order, name="order"),
    path("order/move/", views.order_move, name="order-move"),
    path("order/toggle/", views.order_toggle, name="order-toggle"),
    path("order/reset/", views.order_reset, name="order-reset"),
    path("order/copy/", order_copy, name="order-copy"),
    path("history/", views.history, name="history"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/admin-address/", views.outbox_admin_address, name="outbox-admin-address"),
    path("outbox/<int:message_id>/", views.outbox_message, name="outbox-message"),
    path("outbox/<int:message_id>/row/", views.outbox_row, name="outbox-row"),
    path("outbox/<int:message_id>/tries/", views.outbox_tries, name="outbox-tries"),
    path("outbox/<int:message_id>/retry/", views.outbox_retry, name="outbox-retry"),
    path("outbox/<int:message_id>/discard/", views.outbox_discard, name="outbox-discard"),
    path("relay/<str:mta>/", views.relay, name="relay"),
    path("relay/<str:mta>/check/", views.relay_check_start, name="relay-check"),
    path("relay/<str:mta>/checks/<int:check_id>/", views.relay_check_status, name="relay-status"),
    path("relay/<str:mta>/apply/", views.relay_apply, name="relay-apply"),
    path("relay/<str:mta>/test/", views.relay_test, name="relay-test"),
    path(
        "relay/<str:mta>/test/<int:account_id>/", views.relay_test_status, name="relay-test-status"
    ),
    path("admin/", admin.site.urls),
    path("accounts/detect-mode/", account_detect_mode, name="account-detect-mode"),
    path("accounts/check-server/", account_form_check, name="account-form-check"),
    path("accounts/<int:account_id>/diagnosis/", account_diagnosis, name="account-diagnosis"),
    path(
        "accounts/<int:account_id>/diagnosis/<str:kind>/",
        account_diagnose,
        name="account-diagnose",
    ),
    path("diagnosis/<int:diagnosis_id>/", diagnosis_status, name="diagnosis-status"),
    path("servers/", servers, name="servers"),
    path("support/", support, name="support"),
    path("support/bundle.<str:fmt>", bundle_download, name="bundle-download"),
    path("support/upload/", bundle_upload, name="bundle-upload"),
    path("support/bundles/<int:bundle_id>/", bundle_view, name="bundle-view"),
    path("support/bundles/<int:bundle_id>/delete/", bundle_delete, name="bundle-delete"),
]
