"""Tasks run in this process (``.apply``) against the real SMTP test server.

The same code runs in the worker; tests/panel/test_worker.py runs it there once.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import before_task_publish
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from xmailadmin import jobs, services
from xmailadmin.models import Account, ProbeRun, State, TestSend, WorkerHeartbeat
from xmailadmin.tasks import expire_stale, probe_all, send_test

pytestmark = pytest.mark.django_db

TEST_ID_HEADER = "X-Xmailadmin-Test-Id"


def queue_and_run(account: Account, key: str, user=None) -> TestSend:
    (send,) = services.start_tests(account, [key], user)
    send_test.apply(kwargs={"send_id": send.id})
    send.refresh_from_db()
    return send


def test_a_test_mail_through_python3_passes_and_arrives(account, smtp, worker_alive):
    send = queue_and_run(account, "python3")
    assert send.state == State.PASSED, send.reason
    assert send.step == "done"
    assert send.finished_at and send.started_at and send.duration_s is not None
    (received,) = smtp.find(TEST_ID_HEADER, str(send.test_id))
    assert received is not None


def test_a_wrong_password_fails_at_auth(account, smtp, worker_alive):
    account.set_password("wrong-password")
    account.save()
    send = queue_and_run(account, "python3")
    assert send.state == State.FAILED
    assert send.step == "auth"
    assert send.reason


def test_implicit_tls_on_the_smtps_port_passes(account, smtp, worker_alive):
    account.port = smtp.smtps_port
    account.mode = "smtps"
    account.save()
    send = queue_and_run(account, "curl")
    assert send.state in (State.PASSED, State.WARNING), send.reason
    assert smtp.find(TEST_ID_HEADER, str(send.test_id))


def test_a_command_that_is_not_installed_is_neutral_not_failed(account, smtp, worker_alive):
    send = queue_and_run(account, "mailx-heirloom")
    assert send.state == State.NOT_INSTALLED
    assert send.css == "unknown"  # grey, not a red failure
    assert send.step == "unsupported"
    assert not smtp.find(TEST_ID_HEADER, str(send.test_id))


def test_a_task_delivered_twice_sends_one_mail(account, smtp, worker_alive):
    (send,) = services.start_tests(account, ["python3"], None)
    assert send_test.apply(kwargs={"send_id": send.id}).get() in ("passed", "warning")
    assert send_test.apply(kwargs={"send_id": send.id}).get() == "skipped"
    assert len(smtp.find(TEST_ID_HEADER, str(send.test_id))) == 1


def test_a_second_start_while_queued_reuses_the_row(offline_account, worker_alive):
    first = services.start_tests(offline_account, ["curl"], None)
    second = services.start_tests(offline_account, ["curl"], None)
    assert first[0].pk == second[0].pk
    assert TestSend.objects.count() == 1


def test_the_soft_time_limit_ends_in_a_failed_row(account, monkeypatch, worker_alive):
    from transports import catalogue

    class Slow:
        def send(self, target, message):
            raise SoftTimeLimitExceeded()

    monkeypatch.setattr(catalogue, "transport_for", lambda key, **options: Slow())
    send = queue_and_run(account, "python3")
    assert send.state == State.FAILED
    assert send.step == "timeout"
    assert "Zeitlimit" in send.explanation


def test_a_password_from_a_dropped_key_fails_with_a_clear_reason(
    account, settings, worker_alive
):
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    send = queue_and_run(account, "python3")
    assert send.state == State.FAILED and send.step == "config"
    assert "entschlüsseln" in send.explanation


def test_rotating_the_key_keeps_passwords_readable(offline_account, settings):
    from tests.panel.conftest import PASSWORD

    old = settings.FERNET_KEYS[0]
    new = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new, old]
    call_command("rotate_fernet_key", stdout=io.StringIO())
    settings.FERNET_KEYS = [new]
    offline_account.refresh_from_db()
    assert offline_account.decrypt_password() == PASSWORD


def test_the_password_appears_nowhere_but_encrypted(
    account, smtp, admin_web, worker_alive, caplog
):
    """Not in the database, a page, a task's arguments or a log line."""
    password = smtp.password
    published: list[str] = []

    def capture(body=None, headers=None, **kwargs):
        published.append(repr(body) + repr(headers))

    before_task_publish.connect(capture, weak=False)
    caplog.set_level(logging.DEBUG)
    try:
        admin_web.post(reverse("send-one", args=[account.pk, "python3"]))
        send = TestSend.objects.get()
        send_test.apply(kwargs={"send_id": send.id})
    finally:
        before_task_publish.disconnect(capture)
    send.refresh_from_db()
    assert send.state == State.PASSED, send.reason
    assert smtp.find(TEST_ID_HEADER, str(send.test_id))  # the password was used

    assert published and all(password not in p for p in published)
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert password not in dump.getvalue()
    assert account.password_encrypted in dump.getvalue()
    for url in (
        reverse("dashboard"),
        reverse("accounts"),
        reverse("account-edit", args=[account.pk]),
        reverse("send-detail", args=[send.pk]),
        reverse("history"),
    ):
        assert password not in admin_web.get(url).content.decode()
    assert password not in caplog.text
    assert password not in send.transcript


# --- probes -------------------------------------------------------------------------------


def test_a_probe_stores_one_result_per_command(worker_alive):
    from transports.catalogue import KEYS

    run = services.start_probe(None)
    probe_all.apply(kwargs={"run_id": run.id})
    run.refresh_from_db()
    assert run.state == State.PASSED, run.error
    assert sorted(run.results.values_list("key", flat=True)) == sorted(KEYS)
    python3 = run.results.get(key="python3")
    assert python3.found and python3.tls_library == "OpenSSL"


# --- stale rows -----------------------------------------------------------------------------


def _send(account, **fields) -> TestSend:
    return TestSend.objects.create(
        account=account, account_name=account.name, command=fields.pop("command", "curl"),
        recipient="a@example.org", **fields,
    )  # fmt: skip


def test_a_running_row_of_a_vanished_worker_is_marked_failed(offline_account):
    send = _send(
        offline_account, state=State.RUNNING, worker="celery@gone",
        started_at=timezone.now() - timedelta(seconds=30),
    )  # fmt: skip
    assert expire_stale.apply().get() == 1
    send.refresh_from_db()
    assert send.state == State.FAILED
    assert "celery@gone" in send.explanation and "Lebenszeichen" in send.explanation


def test_a_running_row_past_the_hard_limit_is_marked_failed(offline_account, settings):
    WorkerHeartbeat.objects.create(hostname="celery@alive")
    send = _send(
        offline_account, state=State.RUNNING, worker="celery@alive",
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60),
    )  # fmt: skip
    jobs.expire_stale()
    send.refresh_from_db()
    assert send.state == State.FAILED and "Zeitlimit" in send.explanation


def test_a_queued_row_nobody_took_is_marked_failed(offline_account, settings):
    send = _send(
        offline_account, state=State.QUEUED,
        created_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60),
    )  # fmt: skip
    jobs.expire_stale()
    send.refresh_from_db()
    assert send.state == State.FAILED and "übernommen" in send.explanation
    assert send_test.apply(kwargs={"send_id": send.id}).get() == "skipped"


def test_a_fresh_running_row_of_a_live_worker_stays(offline_account):
    WorkerHeartbeat.objects.create(hostname="celery@alive")
    send = _send(
        offline_account, state=State.RUNNING, worker="celery@alive", started_at=timezone.now()
    )
    jobs.expire_stale()
    send.refresh_from_db()
    assert send.state == State.RUNNING


def test_a_restarted_worker_fails_what_it_was_running(offline_account):
    send = _send(
        offline_account, state=State.RUNNING, worker="celery@host", started_at=timezone.now()
    )
    probe = ProbeRun.objects.create(state=State.RUNNING, worker="celery@host")
    assert jobs.fail_rows_of_worker("celery@host") == 2
    send.refresh_from_db()
    probe.refresh_from_db()
    assert send.state == probe.state == State.FAILED
    assert "neu gestartet" in send.explanation


def test_beat_probes_on_the_configured_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["probe-all"]
    assert entry["task"] == "xmailadmin.tasks.scheduled_probe"
    assert entry["schedule"].total_seconds() == settings.XMAILADMIN_PROBE_INTERVAL


def test_a_probe_interval_of_zero_turns_the_scheduled_probe_off(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "XMAILADMIN_PROBE_INTERVAL": "0", "XMAILADMIN_VAR_DIR": str(tmp_path)}
    code = "from django.conf import settings; print(sorted(settings.CELERY_BEAT_SCHEDULE))"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**env, "DJANGO_SETTINGS_MODULE": "xmailadmin.settings"},
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    ).stdout  # fmt: skip
    assert "probe-all" not in out and "expire-stale-rows" in out


def test_the_scheduled_probe_runs_inline_and_skips_while_one_is_active():
    from xmailadmin.tasks import scheduled_probe

    assert scheduled_probe.apply().get() == "passed"
    run = ProbeRun.objects.get()
    assert run.trigger == "scheduled" and run.results.count() > 0
    ProbeRun.objects.create(state=State.QUEUED)
    assert scheduled_probe.apply().get() == "skipped"


def test_tool_output_with_nul_bytes_is_stored_escaped(account, monkeypatch, worker_alive):
    from transports import catalogue
    from transports.base import SENT, SendResult, Step

    class Chatty:
        def send(self, target, message):
            return SendResult(ok=True, step=Step.DONE, reason=SENT, transcript="a\x00b")

    monkeypatch.setattr(catalogue, "transport_for", lambda key, **options: Chatty())
    send = queue_and_run(account, "perl")
    assert send.state == State.PASSED
    assert send.transcript == "a\\x00b"


def test_a_transport_that_raises_fails_the_row_without_the_password(
    account, monkeypatch, worker_alive
):
    from transports import catalogue

    class Broken:
        def send(self, target, message):
            raise RuntimeError(f"the tool said {target.password}")

    monkeypatch.setattr(catalogue, "transport_for", lambda key, **options: Broken())
    send = queue_and_run(account, "perl")
    assert (send.state, send.step) == (State.FAILED, "unknown")
    assert send.reason.startswith("RuntimeError: the tool said ")
    assert account.decrypt_password() not in send.explanation + send.reason


def test_a_failed_row_says_what_to_do_in_the_readers_language(
    account, smtp, worker_alive, admin_web
):
    account.set_password("wrong-password")
    account.save()
    send = queue_and_run(account, "python3")
    assert send.state == State.FAILED and send.reason_code == "auth"

    html = admin_web.get(reverse("dashboard")).content.decode()

    assert f"prüfen Sie den Benutzernamen {account.username} und das Passwort" in html
    assert 'data-suggestion="python3"' in html
    assert queue_and_run_passing(account, smtp).suggestion == ""  # a pass has none


def queue_and_run_passing(account: Account, smtp) -> TestSend:
    account.set_password(smtp.password)
    account.save()
    send = queue_and_run(account, "python3")
    assert send.state == State.PASSED, send.reason
    return send
