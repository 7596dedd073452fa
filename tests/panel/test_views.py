"""Pages and permissions: every URL needs a login, support changes nothing."""

from __future__ import annotations

import json
import re

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
    ("get", "outbox", {}),
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
    ("post", "outbox-retry", {"message_id": 1}),
    ("post", "outbox-discard", {"message_id": 1}),
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
    assert f'href="{reverse("account-edit", args=[offline_account.pk])}"' not in html
    assert reverse("account-new") not in html
    # The diagnosis only reads and checks: support may open it.
    assert f'href="{reverse("account-diagnosis", args=[offline_account.pk])}"' in html


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
    assert re.search(r'hx-trigger="every \d+m?s"', response.content.decode())


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
    assert len(re.findall(r'hx-trigger="every \d+m?s"', html)) == 2
    assert "sends-changed" in json.loads(response["HX-Trigger"])
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
    html = response.content.decode()
    assert "Port 587 ist üblicherweise STARTTLS, im Konto steht SMTPS" in html
    assert "»Modus erkennen«" in html  # a guess: the page says how to be sure


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
    admin_web.post(reverse("account-delete", args=[offline_account.pk]), {"confirm": "1"})
    assert not Account.objects.exists()
    assert TestSend.objects.get().account_name == "Büro"


def test_deleting_asks_on_the_page_first_not_with_a_browser_box(admin_web, offline_account):
    listing = admin_web.get(reverse("accounts")).content.decode()
    assert "hx-confirm" not in listing
    url = reverse("account-delete", args=[offline_account.pk])
    response = admin_web.post(url, **HTMX)
    assert response["HX-Retarget"] == "#account-confirm"
    html = response.content.decode()
    assert 'id="delete-confirm"' in html and "<html" not in html
    assert "Das Konto »Büro« wirklich löschen?" in html
    assert 'name="confirm" value="1"' in html
    html = admin_web.post(url).content.decode()  # without JavaScript: the whole page asks
    assert 'id="delete-confirm"' in html and "<table" in html
    assert Account.objects.filter(pk=offline_account.pk).exists()
    assert not AuditEntry.objects.filter(action="account_deleted").exists()
    response = admin_web.post(url, {"confirm": "1"}, follow=True)
    assert not Account.objects.exists()
    assert "gelöscht" in response.content.decode()


# --- the password after a form error ------------------------------------------------------


def kept_ticket(html: str) -> str:
    import re

    match = re.search(r'name="password_kept" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_after_a_form_error_the_typed_password_is_kept_but_never_shown(admin_web):
    html = admin_web.post(reverse("account-new"), account_data(port="99999")).content.decode()
    assert "Es wurde nichts gespeichert" in html
    assert "geheim" not in html
    assert "Das eingegebene Passwort bleibt erhalten" in html
    ticket = kept_ticket(html)
    session = admin_web.session.get("xmailadmin_kept_passwords", {})
    assert ticket in session and "geheim" not in str(session)  # encrypted in the session too
    response = admin_web.post(
        reverse("account-new"), account_data(password="", password_kept=ticket)
    )
    assert response.status_code == 302
    assert Account.objects.get().decrypt_password() == "geheim"
    assert not admin_web.session.get("xmailadmin_kept_passwords")  # used up


def test_a_password_typed_again_after_an_error_wins(admin_web):
    html = admin_web.post(reverse("account-new"), account_data(port="0")).content.decode()
    data = account_data(password="neu-geheim", password_kept=kept_ticket(html))
    admin_web.post(reverse("account-new"), data)
    assert Account.objects.get().decrypt_password() == "neu-geheim"


def test_a_kept_password_is_only_for_the_session_that_typed_it(admin_web, panel_admin):
    from django.test import Client

    html = admin_web.post(reverse("account-new"), account_data(port="0")).content.decode()
    other = Client()
    other.force_login(panel_admin)
    data = account_data(password="", password_kept=kept_ticket(html))
    html = other.post(reverse("account-new"), data).content.decode()
    assert "Bitte ein Passwort eingeben." in html
    assert not Account.objects.exists()


def test_an_edit_error_keeps_a_newly_typed_password(admin_web, offline_account):
    url = reverse("account-edit", args=[offline_account.pk])
    html = admin_web.post(url, account_data(password="anders", host="a;b")).content.decode()
    admin_web.post(url, account_data(password="", password_kept=kept_ticket(html)))
    offline_account.refresh_from_db()
    assert offline_account.decrypt_password() == "anders"


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


def test_a_burst_of_up_and_down_clicks_is_one_order_change(admin_web):
    for key, direction in (("perl", "up"), ("perl", "up"), ("curl", "down")):
        admin_web.post(reverse("order-move"), {"key": key, "direction": direction}, **HTMX)
    entries = AuditEntry.objects.filter(action="order_changed")
    assert entries.count() == 1
    final = [s.key for s in TransportSetting.ordered()]
    assert entries.get().detail == " > ".join(final)


def test_an_order_change_after_a_pause_or_another_entry_is_a_new_one(admin_web):
    from datetime import timedelta

    def move():
        admin_web.post(reverse("order-move"), {"key": "perl", "direction": "up"}, **HTMX)

    move()
    AuditEntry.objects.update(at=AuditEntry.objects.get().at - timedelta(seconds=61))
    move()
    assert AuditEntry.objects.filter(action="order_changed").count() == 2
    admin_web.post(reverse("order-toggle"), {"key": "curl"}, **HTMX)
    move()
    assert AuditEntry.objects.filter(action="order_changed").count() == 3


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

    from panel_workers import use_broker

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


# --- polling: fast while a row is young, then less often; cheap each time ------------------


def _running(account, command="curl", age=0.0, **fields) -> TestSend:
    from datetime import timedelta

    from django.utils import timezone

    at = timezone.now() - timedelta(seconds=age)
    return TestSend.objects.create(
        account=account, account_name=account.name, command=command, recipient="a@example.org",
        created_at=at, started_at=at,
        **{"state": State.RUNNING, "worker": "celery@test", **fields},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("age", "delay"), [(0, "100ms"), (1.5, "200ms"), (5, "500ms"), (30, "1s"), (None, "")]
)
def test_a_running_row_is_polled_often_at_first_then_less(offline_account, age, delay):
    """Most sends end within a second: a result shows within 0.25 s of it."""
    from datetime import timedelta

    from django.utils import timezone

    from xmailadmin.views.common import poll_every

    if age is None:
        row = TestSend(state=State.PASSED)
    else:
        row = TestSend(state=State.RUNNING, created_at=timezone.now() - timedelta(seconds=age))
    assert poll_every(row) == delay


def test_the_polled_row_names_its_next_delay(admin_web, offline_account, worker_alive):
    _running(offline_account, age=30)
    response = admin_web.get(reverse("row", args=[offline_account.pk, "curl"]), **HTMX)
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in response.content.decode()


def test_a_poll_of_a_young_running_row_is_cheap(
    admin_web, offline_account, worker_alive, django_assert_max_num_queries
):
    """Several polls a second per running row: no expiry queries (a row younger than
    three heartbeats cannot be stale) and one query for its send."""
    TransportSetting.ordered()
    ProbeRun.objects.create(state=State.PASSED)
    _running(offline_account)
    url = reverse("row", args=[offline_account.pk, "curl"])
    admin_web.get(url, **HTMX)  # the session, once
    with django_assert_max_num_queries(9):  # login 3, account, server, order, probe 2, send
        assert admin_web.get(url, **HTMX).status_code == 200


def test_an_old_running_row_of_a_dead_worker_is_failed_when_polled(admin_web, offline_account):
    _running(offline_account, age=60, worker="celery@gone")
    response = admin_web.get(reverse("row", args=[offline_account.pk, "curl"]), **HTMX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "Worker gestoppt" in html and "celery@gone" in html and "Zeitüberschreitung" not in html


def test_a_running_row_shows_how_long_it_has_run(admin_web, offline_account, worker_alive):
    _running(offline_account, age=7.4)
    html = admin_web.get(reverse("row", args=[offline_account.pk, "curl"]), **HTMX).content
    assert "seit 7 s" in html.decode()


def test_a_row_that_ends_tells_the_status_line_to_reload(admin_web, offline_account):
    _running(offline_account, state=State.PASSED, step="done")
    response = admin_web.get(reverse("row", args=[offline_account.pk, "curl"]), **HTMX)
    assert response.status_code == 286
    assert "sends-changed" in json.loads(response["HX-Trigger"])


def test_the_status_line_is_on_the_dashboard_and_reloads_itself(admin_web, offline_account):
    first = TransportSetting.ordered()[0]
    _running(offline_account, first.key, state=State.PASSED, step="done")
    html = admin_web.get(reverse("dashboard")).content.decode()
    start = html.index('id="status-line"')
    line = html[start : html.index("</p>", start)]
    assert "Der Mailversand funktioniert über den Ersten der Reihenfolge" in line
    assert 'hx-select="#status-line"' in line and "sends-changed from:body" in line
