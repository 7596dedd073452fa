"""The relay page: postfix and exim checked, configured with confirmation, and tested
until delivered, from the panel.

The tasks run in this process (``.apply``), as in test_tasks.py, against a private
postfix (tests/transports/relay/private_mta.py) that relays to the session's SMTP test server:
XMAILADMIN_POSTFIX_CONFIG_DIR points the panel at it. The browser test (test_browser.py)
runs a check in the real worker against the machine's own postfix.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.signals import before_task_publish
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone, translation

from transports.base import SendResult, Target
from transports.relay import Difference
from transports.relay.follow import QueueState as FollowState
from transports.relay.follow import Tracking
from transports.relay.follow import result_of as verdict
from transports.sendmail import PostfixSendmail
from transports.texts import Text
from xmailadmin import jobs
from xmailadmin.models import Account, AuditEntry, RelayJob, State, TestSend
from xmailadmin.tasks import relay_apply, relay_check, send_test

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transports" / "relay"))
from private_mta import PrivateExim, PrivatePostfix, private_exim_binary  # noqa: E402

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
TEST_ID_HEADER = "X-Xmailadmin-Test-Id"


# --- fixtures -----------------------------------------------------------------------------


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("a private postfix or exim instance needs root (CI runs as root)")


@pytest.fixture
def private_postfix(pki, settings) -> Iterator[PrivatePostfix]:
    """A postfix of its own (configuration, queue, log), the panel pointed at it."""
    _require_root()
    if not shutil.which("postfix"):
        pytest.skip("postfix is not installed (scripts/setup.sh test installs it)")
    instance = PrivatePostfix(pki.ca_file)
    try:
        instance.start()
        settings.XMAILADMIN_POSTFIX_CONFIG_DIR = str(instance.config_dir)
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def private_exim(pki, settings) -> Iterator[PrivateExim]:
    _require_root()
    try:
        binary = private_exim_binary()
    except RuntimeError as exc:
        pytest.skip(f"no private exim: {exc}")
    instance = PrivateExim(binary, pki.ca_file)
    try:
        instance.start()
        relay = instance.relay
        settings.XMAILADMIN_EXIM_BINARY = relay.binary
        settings.XMAILADMIN_EXIM_CONF_DIR = relay.conf_dir
        settings.XMAILADMIN_EXIM_CONFIG_FILE = relay.config_file
        settings.XMAILADMIN_EXIM_UPDATE_CONF = relay.update_exim4_conf
        yield instance
    finally:
        instance.stop()


def _relay_account(smtp_server, ca_file: str, port: int, password: str | None = None) -> Account:
    """The test server as the relay's account: by address, certificate name localhost,
    the CA copy the relay's own user can read."""
    acc = Account(
        name="Relayziel",
        host=smtp_server.host,
        port=port,
        mode="smtps" if port == smtp_server.smtps_port else "starttls",  # ports are not 465/587
        username=smtp_server.user,
        sender="panel@example.org",
        recipient="admin@example.org",
        ca_file=ca_file,
        tls_name="localhost",
        is_default=True,
    )
    acc.set_password(password or smtp_server.password)
    acc.save()
    return acc


@pytest.fixture
def postfix_account(private_postfix, smtp_server) -> Account:
    return _relay_account(smtp_server, private_postfix.ca_file, smtp_server.smtps_port)


def check_now(client, mta: str, account: Account) -> RelayJob:
    """Press "check" as the page does, then run the queued task here."""
    response = client.post(reverse("relay-check", args=[mta]), {"account": account.pk})
    assert response.status_code == 302, response.content[:300]
    check = RelayJob.objects.filter(mta=mta, kind="check").first()
    relay_check.apply(kwargs={"check_id": check.id})
    check.refresh_from_db()
    return check


def apply_now(client, check: RelayJob) -> RelayJob:
    """Confirm the configuration of ``check`` and run the queued write here."""
    response = client.post(
        reverse("relay-apply", args=[check.mta]), {"check": check.pk, "confirm": "1"}
    )
    assert response.status_code == 302, response.content[:300]
    job = RelayJob.objects.get(kind="apply", confirmed=check)
    relay_apply.apply(kwargs={"check_id": job.id})
    job.refresh_from_db()
    return job


def test_now(client, mta: str, account: Account) -> TestSend:
    response = client.post(reverse("relay-test", args=[mta]), {"account": account.pk})
    assert response.status_code == 302, response.content[:300]
    send = TestSend.objects.get(account=account, command=mta, state=State.QUEUED)
    send_test.apply(kwargs={"send_id": send.id})
    send.refresh_from_db()
    return send


test_now.__test__ = False  # a helper, not a test


def finished_check(account: Account, mta: str = "postfix", **fields) -> RelayJob:
    """A check row as the task writes it, without running a relay."""
    values = {
        "mta": mta,
        "account": account,
        "account_name": account.name,
        "state": State.WARNING,
        "finished_at": timezone.now(),
        "status": {
            "mta": mta, "installed": True, "running": True, "version": "3.7.11",
            "tls_library": "OpenSSL", "tls_library_version": "3.0.15", "tls12": "yes",
            "tls13": "yes", "config_path": "/etc/postfix/main.cf", "configured": True,
            "log_path": "/var/log/mail.log", "settings": {"relayhost": ""},
            "notes": [Text("the SASL password map could not be read (needs root)").to_dict()],
        },
        "differences": [
            Difference(
                "relayhost", "", "[smtp.example.org]:587",
                Text(
                    "relayhost is not set, so postfix sends straight to the recipients' "
                    "servers; set relayhost = %(key)s",
                    {"key": "[smtp.example.org]:587"},
                ),
            ).to_dict()
        ],
        "config": {
            "mta": mta, "settings_path": "/etc/postfix/main.cf",
            "settings": {"relayhost": "[smtp.example.org]:587"},
            "files": [
                {
                    "path": "/etc/postfix/sasl_passwd", "mode": "0600", "secret": True,
                    "group": None,
                    "content": "[smtp.example.org]:587 buero@example.org:********\n",
                }
            ],
            "commands": ["postfix check", "postfix reload"], "notes": [], "text": "",
        },
    }  # fmt: skip
    values.update(fields)
    return RelayJob.objects.create(**values)


# --- permissions ------------------------------------------------------------------------------


def relay_urls(account_id: int, check_id: int) -> list[tuple[str, str, list, dict]]:
    return [
        ("get", "relay", ["postfix"], {}),
        ("get", "relay", ["exim"], {}),
        ("post", "relay-check", ["postfix"], {"account": account_id}),
        ("get", "relay-status", ["postfix", check_id], {}),
        ("get", "relay-apply", ["postfix"], {"check": check_id}),
        ("post", "relay-apply", ["postfix"], {"check": check_id, "confirm": "1"}),
        ("post", "relay-test", ["postfix"], {"account": account_id}),
        ("get", "relay-test-status", ["postfix", account_id], {}),
    ]


def test_every_relay_url_sends_anonymous_users_to_the_login(client, offline_account):
    check = finished_check(offline_account)
    for method, name, args, data in relay_urls(offline_account.pk, check.pk):
        response = getattr(client, method)(reverse(name, args=args), data)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name
    assert RelayJob.objects.count() == 1


def test_support_sees_the_relay_pages(support_web, offline_account):
    check = finished_check(offline_account)
    for mta in ("postfix", "exim"):
        assert support_web.get(reverse("relay", args=[mta])).status_code == 200
    response = support_web.get(reverse("relay-status", args=["postfix", check.pk]))
    assert response.status_code == 286


def test_support_may_check_and_test_but_sees_no_apply_button(
    support_web, offline_account, worker_alive
):
    finished_check(offline_account)
    html = support_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert 'id="relay-check-button"' in html
    assert 'id="relay-test-button"' in html
    assert 'id="relay-apply-button"' not in html
    assert reverse("relay-apply", args=["postfix"]) not in html


def test_support_is_refused_the_confirmation_and_the_apply(support_web, offline_account):
    check = finished_check(offline_account)
    url = reverse("relay-apply", args=["postfix"])
    assert support_web.get(url, {"check": check.pk}).status_code == 403
    assert support_web.post(url, {"check": check.pk, "confirm": "1"}).status_code == 403
    assert not RelayJob.objects.filter(kind="apply").exists()
    assert not AuditEntry.objects.filter(action__startswith="relay_apply").exists()


def test_support_starts_a_check_and_a_test_mail(support_web, offline_account, worker_alive):
    data = {"account": offline_account.pk}
    response = support_web.post(reverse("relay-check", args=["exim"]), data)
    assert response.status_code == 302
    check = RelayJob.objects.get()
    assert (check.mta, check.kind, check.state) == ("exim", "check", State.QUEUED)
    assert check.requested_by.username == "support"
    response = support_web.post(reverse("relay-test", args=["exim"]), data)
    assert response.status_code == 302
    send = TestSend.objects.get()
    assert (send.command, send.requested_by.username) == ("exim", "support")
    actions = set(AuditEntry.objects.values_list("action", "target"))
    assert {("relay_check", "exim"), ("test_sent", offline_account.name)} <= actions


def test_an_unknown_relay_is_not_found(admin_web, offline_account):
    assert admin_web.get(reverse("relay", args=["sendmail"])).status_code == 404
    data = {"account": offline_account.pk}
    response = admin_web.post(reverse("relay-check", args=["qmail"]), data)
    assert response.status_code == 404


# --- the page ---------------------------------------------------------------------------------


def test_the_navigation_leads_to_the_relay_page(admin_web, offline_account):
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("relay", args=["postfix"])}"' in html
    assert "Relay-Server" in html


def test_without_an_account_the_page_says_to_add_one(admin_web):
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert 'id="no-account"' in html
    assert 'id="relay-check-button"' not in html


def test_before_the_first_check_the_page_explains_it(admin_web, offline_account):
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert 'id="no-check"' in html
    assert "Noch nicht geprüft" in html


def test_the_page_shows_status_and_differences_in_german(admin_web, offline_account):
    finished_check(offline_account)
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "3.7.11" in html and "OpenSSL 3.0.15" in html
    assert "relayhost ist nicht gesetzt" in html
    assert "relayhost is not set" not in html
    assert "konnte nicht gelesen werden (braucht root)" in html  # the note, translated
    assert "1 Abweichung" in html


def test_the_page_shows_the_differences_in_english_to_an_english_reader(
    admin_web, offline_account
):
    finished_check(offline_account)
    admin_web.post(reverse("set_language"), {"language": "en"})
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "relayhost is not set, so postfix sends straight" in html
    assert "relayhost ist nicht gesetzt" not in html
    assert "1 difference" in html


def test_a_check_older_than_the_sentences_as_data_still_shows_its_english(
    admin_web, offline_account
):
    old = {
        "setting": "relayhost", "current": "", "wanted": "[smtp.example.org]:587",
        "en": "relayhost is not set, so postfix sends straight to the recipients' servers; "
        "set relayhost = [smtp.example.org]:587",
        "de": "relayhost ist nicht gesetzt, postfix stellt also direkt an die Server der "
        "Empfänger zu; relayhost = [smtp.example.org]:587 setzen",
    }  # fmt: skip
    check = finished_check(offline_account, differences=[old])
    check.status["notes"] = ["the SASL password map could not be read (needs root)"]
    check.save()
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "relayhost is not set, so postfix sends straight" in html
    assert "konnte nicht gelesen werden (braucht root)" in html  # a note that is a message id


def test_the_secret_file_is_shown_masked_with_where_the_password_goes(
    admin_web, offline_account
):
    finished_check(offline_account)
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "buero@example.org:********" in html
    assert "/etc/postfix/sasl_passwd" in html
    assert "Passwort an seine Stelle" in html


def test_a_running_check_polls_and_stops_with_286_when_final(admin_web, offline_account):
    check = finished_check(offline_account, state=State.RUNNING, finished_at=None)
    url = reverse("relay-status", args=["postfix", check.pk])
    page = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert f'hx-get="{url}"' in page and re.search(r'hx-trigger="every \d+m?s"', page)
    assert admin_web.get(url, **HTMX).status_code == 200
    jobs.finish(check, state=State.WARNING)
    response = admin_web.get(url, **HTMX)
    assert response.status_code == 286
    assert "hx-trigger=" not in response.content.decode().split('id="relay-check"')[1][:300]


def test_a_second_click_on_check_reuses_the_running_check(admin_web, offline_account, worker_alive):
    for _ in range(2):
        admin_web.post(reverse("relay-check", args=["postfix"]), {"account": offline_account.pk})
    assert RelayJob.objects.count() == 1


def test_without_a_worker_a_check_is_not_queued_and_the_page_says_why(
    admin_web, offline_account
):
    response = admin_web.post(
        reverse("relay-check", args=["postfix"]), {"account": offline_account.pk}, follow=True
    )
    assert "Kein Worker läuft" in response.content.decode()
    assert not RelayJob.objects.exists()


def test_a_check_left_by_a_dead_worker_is_marked_failed(admin_web, offline_account):
    long_ago = timezone.now() - timezone.timedelta(minutes=1)
    check = finished_check(
        offline_account, state=State.RUNNING, worker="celery@gone", started_at=long_ago,
        finished_at=None,
    )  # fmt: skip
    response = admin_web.get(reverse("relay-status", args=["postfix", check.pk]), **HTMX)
    assert response.status_code == 286
    check.refresh_from_db()
    assert check.state == State.FAILED
    assert "celery@gone" in check.error


# --- confirmation ----------------------------------------------------------------------------


def test_the_confirmation_lists_exactly_what_will_be_written(admin_web, offline_account):
    check = finished_check(offline_account)
    response = admin_web.get(reverse("relay-apply", args=["postfix"]), {"check": check.pk})
    html = response.content.decode()
    assert response.status_code == 200
    for text in (
        "/etc/postfix/main.cf", "relayhost = [smtp.example.org]:587", "/etc/postfix/sasl_passwd",
        "buero@example.org:********", "postfix check", "postfix reload", "xmailadmin-backup",
    ):  # fmt: skip
        assert text in html, text
    assert 'name="confirm" value="1"' in html


def test_an_apply_without_the_confirm_flag_writes_nothing(admin_web, offline_account, worker_alive):
    check = finished_check(offline_account)
    response = admin_web.post(reverse("relay-apply", args=["postfix"]), {"check": check.pk})
    assert response.status_code == 200
    assert 'id="not-confirmed"' in response.content.decode()
    assert not RelayJob.objects.filter(kind="apply").exists()


def test_an_apply_needs_a_finished_check(admin_web, offline_account):
    check = finished_check(offline_account, state=State.RUNNING, finished_at=None)
    response = admin_web.get(reverse("relay-apply", args=["postfix"]), {"check": check.pk})
    assert response.status_code == 302
    assert admin_web.get(reverse("relay-apply", args=["postfix"])).status_code == 404
    response = admin_web.get(reverse("relay-apply", args=["exim"]), {"check": check.pk})
    assert response.status_code == 404  # the check of another relay


def test_a_confirmed_apply_is_queued_and_logged(admin_web, offline_account, worker_alive):
    check = finished_check(offline_account)
    response = admin_web.post(
        reverse("relay-apply", args=["postfix"]), {"check": check.pk, "confirm": "1"}
    )
    assert response.status_code == 302
    job = RelayJob.objects.get(kind="apply")
    assert (job.confirmed, job.state, job.requested_by.username) == (check, State.QUEUED, "chef")
    entry = AuditEntry.objects.get(action="relay_apply")
    assert "/etc/postfix/main.cf" in entry.detail and "/etc/postfix/sasl_passwd" in entry.detail


def test_relay_jobs_are_queued_with_the_row_id_only(admin_web, offline_account, worker_alive):
    published = []

    def capture(body=None, headers=None, **kwargs):
        published.append(repr(body) + repr(headers))

    before_task_publish.connect(capture, weak=False)
    try:
        check = finished_check(offline_account)
        admin_web.post(reverse("relay-check", args=["exim"]), {"account": offline_account.pk})
        data = {"check": check.pk, "confirm": "1"}
        admin_web.post(reverse("relay-apply", args=["postfix"]), data)
    finally:
        before_task_publish.disconnect(capture)
    assert len(published) == 2
    password = offline_account.decrypt_password()
    assert all("check_id" in p and password not in p for p in published)


# --- the account's certificate name -----------------------------------------------------


def test_the_certificate_name_is_saved_with_the_account(admin_web, offline_account):
    data = {
        "name": "Büro", "host": "192.0.2.10", "port": "465", "mode": "", "username": "buero",
        "password": "", "sender": "buero@example.org", "recipient": "admin@example.org",
        "ca_file": "", "tls_name": "mail.example.org", "verify": "on", "is_default": "on",
    }  # fmt: skip
    response = admin_web.post(reverse("account-edit", args=[offline_account.pk]), data)
    assert response.status_code == 302
    offline_account.refresh_from_db()
    assert offline_account.tls_name == "mail.example.org"
    assert offline_account.decrypt_password() == "s3cr3t-Pässwort;$(echo nope)"  # kept


@pytest.mark.parametrize("value", ["192.0.2.10", "::1", "mail example", "mx;reboot"])
def test_the_certificate_name_must_be_a_host_name(admin_web, offline_account, value):
    data = {
        "name": "Büro", "host": "192.0.2.10", "port": "465", "username": "buero",
        "sender": "buero@example.org", "recipient": "admin@example.org", "tls_name": value,
    }  # fmt: skip
    response = admin_web.post(reverse("account-edit", args=[offline_account.pk]), data)
    assert response.status_code == 200
    assert "Es wurde nichts gespeichert" in response.content.decode()
    offline_account.refresh_from_db()
    assert offline_account.tls_name == ""


# --- the dashboard's relay rows -------------------------------------------------------------


def _relay_send(account: Account, result: SendResult | None = None, **fields) -> TestSend:
    """A test send through postfix as the task stores ``result``: the reason as text
    and as data (message id and parameters)."""
    values = {
        "account": account, "account_name": account.name, "command": "postfix",
        "recipient": account.recipient, "state": State.FAILED, "finished_at": timezone.now(),
    }  # fmt: skip
    if result is not None:
        values.update(
            step=result.step.value, reason=str(result.reason), reason_code=result.reason_code,
            reason_text=result.reason.to_dict(), detail=result.detail,
            delivered=result.delivered, warnings=[w.to_dict() for w in result.warnings],
        )  # fmt: skip
    values.update(fields)
    return TestSend.objects.create(**values)


def _target(account: Account) -> Target:
    return Target(
        host=account.host, port=account.port, user=account.username, password="pw",
        sender=account.sender, recipient=account.recipient,
    )  # fmt: skip


def test_a_deferred_relay_row_says_so_with_the_reason(admin_web, offline_account):
    deferred = Tracking(
        message_id="<x@y>", queue_id="4AB", state=FollowState.DEFERRED,
        reason="SASL authentication failed; server 127.0.0.1 said: 535 5.7.8 Authentication failed",
    )  # fmt: skip
    _relay_send(offline_account, verdict(deferred, _target(offline_account), "postfix", 1.0))
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert "zurückgestellt" in html
    assert "535 5.7.8 Authentication failed" in html
    assert "Benutzername oder Passwort abgelehnt" in html


def test_a_deferred_row_older_than_its_reason_data_shows_its_english(admin_web, offline_account):
    _relay_send(
        offline_account, step="auth", reason_code="auth", delivered=False,
        reason="deferred by the local postfix (queue ID 4AB): the server rejected user or password",
    )  # fmt: skip
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert "zurückgestellt" in html  # the delivery badge
    assert "the server rejected user or password" in html


def test_a_delivered_relay_row_says_delivered(admin_web, offline_account):
    _relay_send(
        offline_account, state=State.PASSED, step="done", reason_code="done", delivered=True,
        verified=True, detail="250 2.0.0 Ok: queued as 5CD",
    )  # fmt: skip
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert ">zugestellt<" in html
    admin_web.post(reverse("set_language"), {"language": "en"})
    assert ">delivered<" in admin_web.get(reverse("dashboard")).content.decode()


def test_a_relay_row_still_queued_at_the_limit_says_so(admin_web, offline_account):
    queued = Tracking(
        message_id="<x@y>", state=FollowState.QUEUED, queue_name="deferred",
        reason="connect to 127.0.0.1[127.0.0.1]:2525: Connection refused",
    )  # fmt: skip
    _relay_send(offline_account, verdict(queued, _target(offline_account), "postfix", 30.0))
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "nach 30 s noch in der Warteschlange deferred des lokalen postfix" in html
    assert "Connection refused" in html


class _StoppedPostfix:
    def ready(self) -> tuple[bool, Text]:
        return False, Text("postfix is not running (postfix start)")


def test_a_relay_that_is_not_ready_says_why_in_german(admin_web, offline_account):
    sendmail = PostfixSendmail(relay=_StoppedPostfix())  # type: ignore[arg-type]
    _relay_send(offline_account, sendmail._send("sendmail", _target(offline_account), b""))
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "nicht übergeben: postfix läuft nicht (postfix start)" in html


# --- end to end with a private postfix ---------------------------------------------------


def test_check_apply_and_a_delivered_test_mail_through_a_private_postfix(
    admin_web, postfix_account, private_postfix, smtp, worker_alive
):
    main_cf = private_postfix.config_dir / "main.cf"
    before = main_cf.read_text()

    # Check: postfix runs but knows nothing of the account.
    check = check_now(admin_web, "postfix", postfix_account)
    assert check.state == State.WARNING, check.error
    assert check.status["installed"] and check.status["running"]
    assert check.status["version"]
    settings = {d["setting"] for d in check.differences}
    assert {"relayhost", "smtp_tls_wrappermode", "smtp_sasl_auth_enable"} <= settings
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "relayhost ist nicht gesetzt" in html
    assert f"[{smtp.host}]:{smtp.smtps_port} {smtp.user}:********" in html

    # Apply: confirmation first, then the write with backups, check and reload.
    confirm = admin_web.get(reverse("relay-apply", args=["postfix"]), {"check": check.pk})
    assert "smtp_tls_wrappermode = yes" in confirm.content.decode()
    assert main_cf.read_text() == before  # looking at the confirmation writes nothing
    job = apply_now(admin_web, check)
    assert job.state == State.PASSED, (job.error, job.result, job.differences)
    assert job.result["ok"] and job.result["action"] == "reloaded"
    assert job.result["backups"] and all(Path(b).exists() for b in job.result["backups"])
    assert job.differences == []
    assert "relayhost = [" in main_cf.read_text()
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert 'id="apply-result"' in html and "neu geladen" in html
    assert 'id="no-differences"' in html
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert {"relay_check", "relay_apply", "relay_applied"} <= set(actions)

    # Test mail: handed to sendmail, followed through the queue until delivered.
    send = test_now(admin_web, "postfix", postfix_account)
    assert send.state == State.PASSED, (send.reason, send.warnings)
    assert send.delivered is True and send.delivery == "delivered"
    assert send.verified and send.tls_version == "TLSv1.3"
    assert smtp.find(TEST_ID_HEADER, str(send.test_id))
    status = admin_web.get(reverse("relay-test-status", args=["postfix", postfix_account.pk]))
    assert status.status_code == 286
    assert "zugestellt" in status.content.decode()
    row = admin_web.get(reverse("row", args=[postfix_account.pk, "postfix"]), **HTMX)
    assert ">zugestellt<" in row.content.decode()

    # The password went into the 0600 map and nowhere the panel shows or stores.
    password = smtp.password
    assert password in (private_postfix.config_dir / "sasl_passwd").read_text()
    pages = [
        reverse("relay", args=["postfix"]),
        reverse("relay-status", args=["postfix", job.pk]),
        f"{reverse('relay-apply', args=['postfix'])}?check={check.pk}",
        reverse("send-detail", args=[send.pk]),
        reverse("history"),
        reverse("dashboard"),
    ]
    for url in pages:
        assert password not in admin_web.get(url).content.decode(), url
    dump = io.StringIO()
    call_command("dumpdata", "xmailadmin", stdout=dump)
    assert password not in dump.getvalue()


def test_a_wrong_password_is_deferred_with_535_on_the_page(
    admin_web, private_postfix, smtp, worker_alive
):
    account = _relay_account(
        smtp, private_postfix.ca_file, smtp.starttls_port, password="nicht-das-Passwort"
    )
    job = apply_now(admin_web, check_now(admin_web, "postfix", account))
    assert job.result["ok"], job.result

    send = test_now(admin_web, "postfix", account)

    assert send.state == State.FAILED
    assert send.delivered is False and send.delivery == "deferred"
    assert send.step == "auth"
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "zurückgestellt" in html and "535" in html
    assert not smtp.find(TEST_ID_HEADER, str(send.test_id))


def test_a_confirmation_that_no_longer_fits_the_account_writes_nothing(
    admin_web, postfix_account, private_postfix, worker_alive
):
    check = check_now(admin_web, "postfix", postfix_account)
    postfix_account.port = 587
    postfix_account.save()
    main_cf = private_postfix.config_dir / "main.cf"
    before = main_cf.read_text()

    job = apply_now(admin_web, check)

    assert job.state == State.FAILED
    assert "nicht mehr die bestätigte" in job.error
    assert main_cf.read_text() == before
    assert not (private_postfix.config_dir / "sasl_passwd").exists()
    assert AuditEntry.objects.filter(action="relay_not_applied").exists()


def test_an_account_the_relay_files_cannot_hold_is_explained(
    admin_web, private_postfix, smtp, worker_alive
):
    account = _relay_account(smtp, private_postfix.ca_file, smtp.smtps_port)
    account.username = "name:mit-doppelpunkt"
    account.save()
    check = check_now(admin_web, "postfix", account)
    assert check.state == State.WARNING
    assert check.status["installed"]
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "Benutzername darf kein" in html


# --- end to end with a private exim -------------------------------------------------------


def test_check_apply_and_a_delivered_test_mail_through_a_private_exim(
    admin_web, private_exim, smtp, worker_alive
):
    account = _relay_account(smtp, private_exim.ca_file, smtp.starttls_port)

    check = check_now(admin_web, "exim", account)
    assert check.state == State.WARNING, check.error
    assert any(d["setting"] == "dc_smarthost" for d in check.differences)
    job = apply_now(admin_web, check)
    assert job.state == State.PASSED, (job.error, job.result, job.differences)
    send = test_now(admin_web, "exim", account)

    assert send.state == State.PASSED, (send.reason, send.warnings)
    assert send.delivery == "delivered"
    assert smtp.find(TEST_ID_HEADER, str(send.test_id))
    with translation.override("de"):
        html = admin_web.get(reverse("relay", args=["exim"])).content.decode()
    assert "zugestellt" in html
    assert smtp.password not in html


# --- what the page offers: only what can work ----------------------------------------------


def test_a_stopped_postfix_is_to_be_started_not_reloaded(admin_web, offline_account):
    check = finished_check(offline_account)
    RelayJob.objects.filter(pk=check.pk).update(status={**check.status, "running": False})
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    then_run = html.split("Danach ausführen")[1].split("</pre>")[0]
    assert "postfix check" in then_run and "postfix start" in then_run
    assert "reload" not in then_run


def test_a_running_postfix_is_reloaded(admin_web, offline_account):
    finished_check(offline_account)
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert "postfix reload" in html.split("Danach ausführen")[1].split("</pre>")[0]


def test_the_tab_of_the_page_shown_is_no_link_to_itself(admin_web, offline_account):
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert '<span aria-current="page" id="tab-postfix">' in html
    tabs = html.split('class="tabs"')[1].split("</nav>")[0]
    assert f'href="{reverse("relay", args=["postfix"])}' not in tabs
    assert f'href="{reverse("relay", args=["exim"])}?account={offline_account.pk}"' in html


def test_a_relay_that_is_not_installed_offers_no_apply_and_no_test(admin_web, offline_account):
    check = finished_check(offline_account)
    RelayJob.objects.filter(pk=check.pk).update(status={"mta": "postfix", "installed": False})
    html = admin_web.get(reverse("relay", args=["postfix"])).content.decode()
    assert 'id="relay-apply-button"' not in html and 'id="relay-test-button"' not in html
    assert 'id="relay-not-installed"' in html and "nicht installiert" in html
    assert 'id="relay-check-button"' in html, "checking again, once installed, stays offered"
    response = admin_web.post(
        reverse("relay-test", args=["postfix"]), {"account": offline_account.pk}, follow=True
    )
    assert "ist auf diesem Server nicht installiert" in response.content.decode()
    assert not TestSend.objects.exists()


def test_a_relay_the_probe_found_missing_offers_no_test(admin_web, offline_account):
    from xmailadmin.models import ProbeResult, ProbeRun

    run = ProbeRun.objects.create(state=State.PASSED)
    ProbeResult.objects.create(run=run, key="exim", found=False)
    html = admin_web.get(reverse("relay", args=["exim"])).content.decode()
    assert 'id="relay-test-button"' not in html and 'id="relay-not-installed"' in html
