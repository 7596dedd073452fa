"""Pages and permissions: every URL needs a login, support changes nothing."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from xmailadmin.models import (
    Account,
    AuditEntry,
    ProbeResult,
    ProbeRun,
    State,
    TestSend,
    TransportSetting,
    WorkerHeartbeat,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}

# (method, url name, kwargs) for every view of the panel.
READ_URLS = [
    ("get", "dashboard", {}),
    ("get", "accounts", {}),
    ("get", "order", {}),
    ("get", "history", {}),
    ("get", "commands", {"account_id": 1}),
    ("get", "row", {"account_id": 1, "key": "python3"}),
    ("get", "probe-status", {"run_id": 1}),
    ("get", "send-detail", {"send_id": 1}),
]
RUN_URLS = [
    ("post", "probe-start", {}),
    ("post", "send-all", {"account_id": 1}),
    ("post", "send-one", {"account_id": 1, "key": "python3"}),
]
CHANGE_URLS = [
    ("get", "account-new", {}),
    ("post", "account-new", {}),
    ("get", "account-edit", {"account_id": 1}),
    ("post", "account-edit", {"account_id": 1}),
    ("post", "account-delete", {"account_id": 1}),
    ("post", "account-default", {"account_id": 1}),
    ("post", "order", {}),
    ("post", "order-move", {}),
    ("post", "order-toggle", {}),
    ("post", "order-reset", {}),
]
ALL_URLS = READ_URLS + RUN_URLS + CHANGE_URLS


@pytest.fixture
def rows(offline_account):
    """Account 1, probe run 1 and test send 1, so every URL above resolves."""
    assert offline_account.pk == 1 or Account.objects.filter(pk=offline_account.pk).update(pk=1)
    run = ProbeRun.objects.create(pk=1, state=State.PASSED)
    TestSend.objects.create(
        pk=1, account_id=1, account_name="Büro", command="curl", recipient="a@example.org",
        state=State.FAILED, step="auth", reason="535 authentication failed",
    )  # fmt: skip
    return run


@pytest.mark.parametrize(("method", "name", "kwargs"), ALL_URLS)
def test_every_url_sends_anonymous_users_to_the_login(client, rows, method, name, kwargs):
    response = getattr(client, method)(reverse(name, kwargs=kwargs))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("method", "name", "kwargs"), ALL_URLS)
def test_every_htmx_url_sends_anonymous_users_to_the_login(client, rows, method, name, kwargs):
    response = getattr(client, method)(reverse(name, kwargs=kwargs), **HTMX)
    assert response["HX-Redirect"] == reverse("login")


@pytest.mark.parametrize(("method", "name", "kwargs"), CHANGE_URLS)
def test_support_is_refused_on_every_change(support_web, rows, method, name, kwargs):
    def state():
        order = TransportSetting.objects.values_list("key", "position", "enabled")
        return Account.objects.count(), list(order), Account.objects.get().updated_at

    before = state()
    response = getattr(support_web, method)(reverse(name, kwargs=kwargs), {"key": "mutt"})
    assert response.status_code == 403
    assert state() == before


@pytest.mark.parametrize(("method", "name", "kwargs"), READ_URLS)
def test_support_sees_every_page(support_web, rows, method, name, kwargs):
    response = getattr(support_web, method)(reverse(name, kwargs=kwargs))
    assert response.status_code in (200, 286)


def test_a_user_without_role_is_refused(client, rows, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))
    assert client.get(reverse("dashboard")).status_code == 403


def test_support_may_start_a_test(support_web, offline_account, worker_alive):
    response = support_web.post(reverse("send-one", args=[offline_account.pk, "curl"]))
    assert response.status_code == 302
    assert TestSend.objects.get().requested_by.username == "support"


def test_support_sees_no_change_buttons(support_web, offline_account):
    html = support_web.get(reverse("accounts")).content.decode()
    assert reverse("account-edit", args=[offline_account.pk]) not in html
    assert reverse("account-new") not in html


def test_the_login_page_logs_in(client, panel_admin):
    response = client.post(reverse("login"), {"username": "chef", "password": "pw-chef"})
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_the_login_page_speaks_german(client):
    html = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en").content.decode()
    assert "Anmelden" in html
    assert '<html lang="de">' in html


def test_the_language_switch_turns_the_panel_english(admin_web):
    admin_web.post(reverse("set_language"), {"language": "en", "next": "/"})
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert '<html lang="en">' in html
    assert "Mail commands of this server" in html


# --- dashboard --------------------------------------------------------------------------


def test_the_empty_dashboard_teaches_what_to_do(admin_web):
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert "Noch kein SMTP-Konto" in html
    assert "Noch keine Erkennung" in html
    assert "Kein Worker läuft" in html
    assert reverse("account-new") in html


def test_the_dashboard_has_one_row_per_command_in_the_preferred_order(admin_web, offline_account):
    from transports.catalogue import KEYS

    TransportSetting.ordered()
    TransportSetting.objects.filter(key="curl").update(position=0)
    html = admin_web.get(reverse("dashboard")).content.decode()
    positions = [html.index(f'id="row-{key}"') for key in KEYS]
    assert len(positions) == len(KEYS)
    assert html.index('id="row-curl"') == min(positions)


def test_the_dashboard_shows_the_probe_and_the_last_test(admin_web, offline_account):
    run = ProbeRun.objects.create(state=State.PASSED)
    ProbeResult.objects.create(
        run=run, key="curl", found=True, path="/usr/bin/curl", version="7.88.1",
        tls_library="OpenSSL", tls_library_version="3.0.11", tls12="yes", tls13="partly",
    )  # fmt: skip
    TestSend.objects.create(
        account=offline_account, account_name="Büro", command="curl", recipient="a@example.org",
        state=State.FAILED, step="auth", reason="535 authentication failed",
    )  # fmt: skip
    html = admin_web.get(reverse("dashboard")).content.decode()
    row = html[html.index('id="row-curl"') :][:6000]
    assert "7.88.1" in row and "OpenSSL 3.0.11" in row
    assert 'class="verdict pass">ja' in row
    assert 'class="verdict partly">bedingt' in row
    assert "fehlgeschlagen" in row and "Anmeldung (AUTH)" in row
    assert "535 authentication failed" in row


def test_the_dashboard_says_when_the_broker_is_unreachable(admin_web, worker_alive, monkeypatch):
    from xmailadmin import health

    monkeypatch.setattr(health, "broker_error", lambda: "ConnectionRefusedError: [Errno 111]")
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert "Broker nicht erreichbar" in html
    assert "REDIS_URL" in html


def test_the_dashboard_is_quiet_when_a_worker_runs(admin_web, offline_account, worker_alive):
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert 'id="worker-problem"' not in html


def test_a_polled_row_keeps_polling_while_its_test_runs(admin_web, offline_account, worker_alive):
    TestSend.objects.create(
        account=offline_account, account_name="Büro", command="curl", recipient="a@example.org",
        state=State.RUNNING, worker="celery@test",
    )  # fmt: skip
    from django.utils import timezone

    TestSend.objects.update(started_at=timezone.now())
    response = admin_web.get(reverse("row", args=[offline_account.pk, "curl"]), **HTMX)
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in response.content.decode()


def test_a_polled_row_stops_polling_with_286_once_final(admin_web, offline_account):
    TestSend.objects.create(
        account=offline_account, account_name="Büro", command="curl", recipient="a@example.org",
        state=State.PASSED, step="done",
    )  # fmt: skip
    response = admin_web.get(reverse("row", args=[offline_account.pk, "curl"]), **HTMX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "bestanden" in html and "every 1s" not in html
    assert html.lstrip().startswith('<tr id="row-curl"')


def test_test_all_queues_one_row_per_enabled_command(admin_web, offline_account, worker_alive):
    TransportSetting.ordered()
    TransportSetting.objects.exclude(key__in=["python3", "curl"]).update(enabled=False)
    response = admin_web.post(reverse("send-all", args=[offline_account.pk]), **HTMX)
    assert response.status_code == 200
    sends = TestSend.objects.all()
    assert sorted(s.command for s in sends) == ["curl", "python3"]
    assert {s.state for s in sends} == {State.QUEUED}
    assert len({s.batch for s in sends}) == 1
    html = response.content.decode()
    assert html.count('hx-trigger="every 1s"') == 2
    assert AuditEntry.objects.filter(action="test_sent", username="chef").exists()


def test_a_second_click_does_not_queue_a_second_mail(admin_web, offline_account, worker_alive):
    url = reverse("send-one", args=[offline_account.pk, "curl"])
    admin_web.post(url, **HTMX)
    admin_web.post(url, **HTMX)
    assert TestSend.objects.count() == 1


def test_a_test_without_worker_is_refused_with_the_reason(admin_web, offline_account):
    response = admin_web.post(reverse("send-all", args=[offline_account.pk]), **HTMX)
    assert response["HX-Retarget"] == "#notice"
    assert "Kein Worker läuft" in response.content.decode()
    assert not TestSend.objects.exists()


def test_a_dead_broker_fails_the_rows_instead_of_hanging(
    admin_web, offline_account, worker_alive, monkeypatch
):
    from xmailadmin import jobs

    def broken(task, **kwargs):
        raise jobs.NotAccepted("Der Broker hat den Auftrag nicht angenommen: refused")

    monkeypatch.setattr(jobs, "_send", broken)
    response = admin_web.post(reverse("send-one", args=[offline_account.pk, "curl"]), **HTMX)
    assert "refused" in response.content.decode()
    send = TestSend.objects.get()
    assert send.state == State.FAILED and "refused" in send.reason


def test_the_probe_button_queues_one_probe(admin_web, worker_alive):
    admin_web.post(reverse("probe-start"), **HTMX)
    admin_web.post(reverse("probe-start"), **HTMX)
    assert ProbeRun.objects.filter(state=State.QUEUED).count() == 1


def test_a_finished_probe_stops_polling_and_reloads_the_table(admin_web):
    run = ProbeRun.objects.create(state=State.PASSED)
    response = admin_web.get(reverse("probe-status", args=[run.pk]), **HTMX)
    assert response.status_code == 286
    assert "probe-finished" in json.loads(response["HX-Trigger"])


def test_the_transcript_opens_as_a_partial(admin_web, offline_account):
    send = TestSend.objects.create(
        account=offline_account, account_name="Büro", command="curl", recipient="a@example.org",
        state=State.PASSED, transcript="> EHLO x\n< 250 ok",
    )  # fmt: skip
    partial = admin_web.get(reverse("send-detail", args=[send.pk]), **HTMX).content.decode()
    assert "EHLO x" in partial and "<html" not in partial
    page = admin_web.get(reverse("send-detail", args=[send.pk])).content.decode()
    assert "EHLO x" in page and "<html" in page


# --- accounts ----------------------------------------------------------------------------


def account_data(**changes) -> dict:
    data = {
        "name": "Büro",
        "host": "smtp.example.org",
        "port": "587",
        "mode": "",
        "username": "buero@example.org",
        "password": "geheim",
        "sender": "buero@example.org",
        "recipient": "admin@example.org",
        "ca_file": "",
        "verify": "on",
        "is_default": "on",
    }
    data.update(changes)
    return data


def test_an_admin_creates_an_account(admin_web):
    response = admin_web.post(reverse("account-new"), account_data())
    assert response.status_code == 302
    account = Account.objects.get()
    assert account.is_default and account.decrypt_password() == "geheim"
    assert AuditEntry.objects.get(action="account_created").username == "chef"


def test_a_bad_account_form_stores_nothing_and_says_why_in_german(admin_web):
    response = admin_web.post(reverse("account-new"), account_data(host="smtp;rm -rf /"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Es wurde nichts gespeichert" in html
    assert "»;«" in html
    assert not Account.objects.exists()


def test_the_password_is_never_rendered(admin_web, offline_account):
    from tests.panel.conftest import PASSWORD

    for url in (
        reverse("accounts"),
        reverse("account-edit", args=[offline_account.pk]),
        reverse("dashboard"),
    ):
        html = admin_web.get(url).content.decode()
        assert PASSWORD not in html
        assert offline_account.password_encrypted not in html


def test_an_empty_password_on_edit_keeps_the_stored_one(admin_web, offline_account):
    from tests.panel.conftest import PASSWORD

    admin_web.post(
        reverse("account-edit", args=[offline_account.pk]), account_data(password="", port="2525")
    )
    offline_account.refresh_from_db()
    assert offline_account.port == 2525
    assert offline_account.decrypt_password() == PASSWORD
    assert AuditEntry.objects.get(action="account_changed").detail == "port"


def test_a_mode_that_contradicts_the_port_is_saved_with_a_warning(admin_web):
    response = admin_web.post(
        reverse("account-new"), account_data(port="587", mode="smtps"), follow=True
    )
    assert Account.objects.get().mode_mismatch
    assert "weicht von der Regel ab" in response.content.decode()


def test_switching_verification_off_is_warned(admin_web):
    data = account_data()
    del data["verify"]
    response = admin_web.post(reverse("account-new"), data, follow=True)
    assert "Zertifikatsprüfung ist für dieses Konto ausgeschaltet" in response.content.decode()


def test_one_account_is_the_default(admin_web, offline_account):
    admin_web.post(reverse("account-new"), account_data(name="Zweites"))
    assert list(Account.objects.filter(is_default=True).values_list("name", flat=True)) == [
        "Zweites"
    ]
    admin_web.post(reverse("account-default", args=[offline_account.pk]))
    assert Account.default() == offline_account


def test_deleting_an_account_keeps_its_history(admin_web, offline_account):
    TestSend.objects.create(
        account=offline_account, account_name="Büro", command="curl", recipient="a@example.org",
        state=State.PASSED,
    )  # fmt: skip
    admin_web.post(reverse("account-delete", args=[offline_account.pk]))
    assert not Account.objects.exists()
    assert TestSend.objects.get().account_name == "Büro"


# --- history ------------------------------------------------------------------------------


def test_history_filters_by_command_and_result(admin_web, offline_account):
    for command, state in (("curl", State.PASSED), ("msmtp", State.FAILED)):
        TestSend.objects.create(
            account=offline_account, account_name="Büro", command=command,
            recipient="a@example.org", state=state, reason=f"reason-{command}",
        )  # fmt: skip
    html = admin_web.get(reverse("history"), {"result": "failed"}).content.decode()
    assert "reason-msmtp" in html and "reason-curl" not in html
    html = admin_web.get(
        reverse("history"), {"command": "curl"}, HTTP_HX_TARGET="history-results", **HTMX
    ).content.decode()
    assert "reason-curl" in html and "reason-msmtp" not in html
    assert "<html" not in html


def test_history_shows_who_changed_what(admin_web):
    admin_web.post(reverse("account-new"), account_data())
    html = admin_web.get(reverse("history")).content.decode()
    assert "Konto angelegt" in html and "chef" in html


def test_heartbeat_older_than_three_beats_means_no_worker(admin_web, offline_account):
    from datetime import timedelta

    from django.utils import timezone

    WorkerHeartbeat.objects.create(hostname="old", seen_at=timezone.now() - timedelta(minutes=5))
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert "Kein Worker läuft" in html
    assert "Letztes Lebenszeichen" in html


# --- the dashboard's page cache -------------------------------------------------------------


def test_the_cached_dashboard_carries_each_requests_own_csrf_token(admin_web, offline_account):
    from xmailadmin.pagecache import CSRF_PLACEHOLDER

    first = admin_web.get(reverse("dashboard"))
    second = admin_web.get(reverse("dashboard"))
    for response in (first, second):
        html = response.content.decode()
        assert CSRF_PLACEHOLDER not in html
        assert 'name="csrfmiddlewaretoken" value="' in html
    token = second.content.decode().split('"X-CSRFToken": "')[1].split('"')[0]
    response = admin_web.post(
        reverse("order-toggle"), {"key": "curl"}, HTTP_X_CSRFTOKEN=token, **HTMX
    )
    assert response.status_code == 200


def test_the_dashboard_shows_a_change_at_once_despite_the_cache(admin_web, offline_account):
    admin_web.get(reverse("dashboard"))
    send = TestSend.objects.create(
        account=offline_account, account_name="Büro", command="curl", recipient="a@example.org",
        state=State.RUNNING, worker="celery@test",
    )  # fmt: skip
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert 'data-state="running"' in html
    from django.utils import timezone

    TestSend.objects.filter(pk=send.pk).update(
        state=State.FAILED, reason="535 nope", finished_at=timezone.now()
    )
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert "535 nope" in html
    services_order = reverse("order-move")
    admin_web.post(services_order, {"key": "curl", "direction": "up"})
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert html.index('id="row-curl"') < html.index('id="row-perl"')


def test_the_cached_dashboard_is_per_user_and_role(client, panel_admin, support_user, rows):
    client.force_login(panel_admin)
    assert "chef" in client.get(reverse("dashboard")).content.decode()
    client.force_login(support_user)
    html = client.get(reverse("dashboard")).content.decode()
    assert "support · Support" in html and "chef ·" not in html


def test_an_unreachable_redis_is_reported_quickly(
    admin_web, offline_account, worker_alive, refused_port, embedded_broker
):
    import time

    from tests.panel.conftest import use_broker

    use_broker(f"redis://127.0.0.1:{refused_port}/0")
    try:
        start = time.monotonic()
        html = admin_web.get(reverse("dashboard")).content.decode()
        assert time.monotonic() - start < 5
        assert "Broker nicht erreichbar" in html
        response = admin_web.post(reverse("send-one", args=[offline_account.pk, "curl"]), **HTMX)
        assert "Broker" in response.content.decode()
        assert not TestSend.objects.exists()
    finally:
        use_broker("filesystem://", embedded_broker)
