"""The one-click retries a failed test offers: the other TLS mode, or the login as sender;
and, when the retry passes, saving that change for the account. Against the real test
SMTP server, which refuses a sender its login does not own (553, as postfix does)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from xmailadmin import services
from xmailadmin.models import Account, AuditEntry, State, TestSend
from xmailadmin.tasks import send_test

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def run_latest(account: Account, key: str) -> TestSend:
    send = TestSend.objects.filter(account=account, command=key).first()
    send_test.apply(kwargs={"send_id": send.id})
    send.refresh_from_db()
    return send


def failed_test(account: Account, key: str = "python3") -> TestSend:
    (send,) = services.start_tests(account, [key], None)
    return run_latest(account, key)


def test_the_wrong_mode_offers_the_other_one_and_saving_it_after_a_pass(
    admin_web, account, smtp, worker_alive
):
    account.mode = "smtps"  # implicit TLS spoken to the STARTTLS port
    account.save()
    first = failed_test(account)
    assert first.state == State.FAILED and first.suggestion_action == "switch_mode"
    dashboard = admin_web.get(reverse("dashboard") + f"?account={account.pk}").content.decode()
    assert 'data-retry="mode"' in dashboard
    assert "Erneut versuchen mit STARTTLS" in dashboard

    response = admin_web.post(reverse("send-retry", args=[account.pk, "python3"]), **HTMX)
    assert response.status_code == 200
    retry = run_latest(account, "python3")
    assert retry.pk != first.pk and retry.mode_tried == "starttls"
    assert retry.state in (State.PASSED, State.WARNING), retry.explanation
    (received,) = smtp.find("X-Xmailadmin-Test-Id", str(retry.test_id))
    assert received.listener == "starttls"
    account.refresh_from_db()
    assert account.mode == "smtps"  # a retry changes nothing by itself

    row = admin_web.get(reverse("row", args=[account.pk, "python3"])).content.decode()
    assert 'data-adopt="mode"' in row and "STARTTLS für das Konto speichern" in row
    admin_web.post(reverse("send-adopt", args=[retry.pk]))
    account.refresh_from_db()
    assert account.mode == "starttls"
    entry = AuditEntry.objects.filter(action=AuditEntry.Action.ACCOUNT_CHANGED).first()
    assert entry.target == account.name and entry.detail == "mode"
    row = admin_web.get(reverse("row", args=[account.pk, "python3"])).content.decode()
    assert "data-adopt" not in row  # saved: nothing left to save


def test_a_refused_sender_offers_the_login_as_sender_and_the_server_sees_it(
    admin_web, account, smtp, worker_alive
):
    account.sender = "fremd@example.net"
    account.save()
    first = failed_test(account)
    assert first.state == State.FAILED and first.suggestion_action == "use_account_sender"
    assert first.retry_offer == {"try": "sender", "value": smtp.user, "label": smtp.user}

    admin_web.post(reverse("send-retry", args=[account.pk, "python3"]), **HTMX)
    retry = run_latest(account, "python3")
    assert retry.sender_tried == smtp.user
    assert retry.state in (State.PASSED, State.WARNING), retry.explanation
    (received,) = smtp.find("X-Xmailadmin-Test-Id", str(retry.test_id))
    assert received.mail_from == smtp.user  # the envelope sender the server saw

    with translation.override("de"):
        assert retry.adoptable["field"] == "sender"
    admin_web.post(reverse("send-adopt", args=[retry.pk]))
    account.refresh_from_db()
    assert account.sender == smtp.user


def test_a_retry_is_refused_when_the_last_test_offers_none(admin_web, account, smtp, worker_alive):
    passed = failed_test(account)
    assert passed.state in (State.PASSED, State.WARNING)
    response = admin_web.post(reverse("send-retry", args=[account.pk, "python3"]))
    assert response.status_code == 302
    assert TestSend.objects.filter(account=account).count() == 1
    assert admin_web.post(reverse("send-adopt", args=[passed.pk])).status_code == 302
    account.refresh_from_db()
    assert account.mode == ""


def test_support_may_retry_but_not_save(support_web, account, smtp, worker_alive):
    account.mode = "smtps"
    account.save()
    failed_test(account)
    support_web.post(reverse("send-retry", args=[account.pk, "python3"]))
    retry = run_latest(account, "python3")
    assert retry.mode_tried == "starttls" and retry.state in (State.PASSED, State.WARNING)
    row = support_web.get(reverse("row", args=[account.pk, "python3"])).content.decode()
    assert "data-adopt" not in row
    assert support_web.post(reverse("send-adopt", args=[retry.pk])).status_code == 403
    account.refresh_from_db()
    assert account.mode == "smtps"
