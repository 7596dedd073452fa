"""The scheduled health check, with the real mail commands against the loopback SMTP
server: a pass; a broken first command (a real msmtp replaced by one that fails) whose
alert is mailed through the next command and seen arriving; no second alert while the
failure lasts, a reminder after the interval, a mail when it works again; how the
dashboard and the history show it, charts included."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from outbox import spool
from transports.catalogue import KEYS
from xmailadmin import health_check, order
from xmailadmin.models import (
    AuditEntry,
    HealthState,
    Server,
    State,
    TestSend,
    Trigger,
    WorkerHeartbeat,
)
from xmailadmin.tasks import scheduled_check, scheduled_health

pytestmark = pytest.mark.django_db

ADMIN = "postmaster@example.org"
TEST_ID_HEADER = "X-Xmailadmin-Test-Id"


def use_only(keys: list[str]) -> None:
    rest = [k for k in KEYS if k not in keys]
    order.save_order(order.OrderProposal(keys + rest, frozenset(keys)))


def check() -> TestSend:
    """One scheduled check, as beat starts it, run here (the worker's code)."""
    assert scheduled_health.apply().get() == 1
    row = TestSend.objects.filter(trigger=Trigger.SCHEDULED).order_by("-id").first()
    scheduled_check.apply(kwargs={"send_id": row.id})
    row.refresh_from_db()
    return row


def alerts(smtp) -> list:
    return [m for m in smtp.messages() if ADMIN in m.rcpt_tos]


@pytest.fixture
def admin_address(outbox) -> str:
    spool.write_admin_address(outbox, ADMIN)
    return ADMIN


@pytest.fixture
def broken_msmtp(tmp_path, monkeypatch):
    """msmtp first in the order, found on PATH, but broken: it fails as a real one whose
    library went missing would. ``repair()`` puts the real one back."""
    folder = tmp_path / "bin"
    folder.mkdir()
    fake = folder / "msmtp"
    fake.write_text("#!/bin/sh\necho 'msmtp: error while loading shared libraries' >&2\nexit 127\n")
    fake.chmod(0o755)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{folder}:{path}")
    use_only(["msmtp", "python3", "curl"])

    class Broken:
        @staticmethod
        def repair() -> None:
            monkeypatch.setenv("PATH", path)

    return Broken


def test_a_passing_check_is_a_real_test_mail_and_alerts_nobody(
    account, smtp, worker_alive, admin_address
):
    use_only(["python3", "curl"])
    row = check()
    assert (row.trigger, row.command, row.state) == (Trigger.SCHEDULED, "python3", State.PASSED)
    (received,) = smtp.find(TEST_ID_HEADER, str(row.test_id))
    assert received.mail_from == account.sender and received.tls_version
    state = HealthState.objects.get()
    assert state.last_check == row and state.failing_since is None
    assert alerts(smtp) == [] and not AuditEntry.objects.filter(action="health_alert").exists()


def test_a_failure_is_mailed_through_the_next_command_once_then_reminded_then_recovered(
    account, smtp, worker_alive, admin_address, broken_msmtp
):
    smtp.clear()
    first = check()
    assert (first.command, first.state) == ("msmtp", State.FAILED)
    state = HealthState.objects.get()
    assert state.failing_since == first.created_at and state.alert_ok is True
    (alert,) = alerts(smtp)
    assert alert.mail_from == account.sender and alert.auth_user == account.username
    text = alert.message.get_content()
    assert alert.message["Subject"] == f"Mailversand gestört auf {Server.local().name}"
    assert "msmtp" in text and "Schritt" in text and alert.message["Auto-Submitted"]
    assert "python3" in state.alert_shown and ADMIN in state.alert_shown  # the next command
    assert first.reason_text and first.explanation in text

    second = check()  # still failing: nobody is told twice
    assert second.state == State.FAILED and len(alerts(smtp)) == 1
    HealthState.objects.update(
        alerted_at=timezone.now() - timedelta(seconds=settings.XMAILADMIN_HEALTH_REMIND + 1)
    )
    check()  # the interval passed: one reminder
    assert len(alerts(smtp)) == 2

    broken_msmtp.repair()
    passed = check()
    assert (passed.command, passed.state) == ("msmtp", State.PASSED)
    recovery = alerts(smtp)[-1]
    assert len(alerts(smtp)) == 3
    name = Server.local().name
    assert recovery.message["Subject"] == f"Mailversand funktioniert wieder auf {name}"
    state.refresh_from_db()
    assert state.failing_since is None and state.recovered_at and state.alert_ok is True
    actions = list(AuditEntry.objects.filter(action__startswith="health").values_list(
        "action", flat=True).order_by("id"))  # fmt: skip
    assert actions == ["health_alert", "health_alert", "health_recovered"]


def test_without_an_admin_address_the_dashboard_says_so_and_the_next_check_mails(
    admin_web, account, smtp, worker_alive, outbox, broken_msmtp
):
    smtp.clear()
    check()
    state = HealthState.objects.get()
    assert state.alert_ok is False and state.alerted_at is None and alerts(smtp) == []
    page = admin_web.get(reverse("dashboard")).content.decode()
    line = page.split('id="checkup-line"')[1].split("</p>")[0]
    assert 'data-state="failing"' in page and "schlägt fehl seit" in line
    assert "keine Admin-Adresse" in line and "msmtp" in line

    spool.write_admin_address(outbox, ADMIN)
    check()  # the alert nobody got is sent now
    assert len(alerts(smtp)) == 1


def test_the_dashboard_row_and_the_history_chart_every_result(
    admin_web, account, smtp, worker_alive, admin_address, broken_msmtp
):
    check()
    broken_msmtp.repair()
    check()
    page = admin_web.get(reverse("dashboard")).content.decode()
    row = page.split('id="row-msmtp"')[1].split("</tr>")[0]
    svg = re.search(r'<svg class="chart"[^>]*aria-label="([^"]+)"', row)
    assert svg and svg.group(1) == "msmtp: 1 von 2 Tests bestanden"
    assert row.count("<rect") == 2 and 'class="fail"' in row and 'class="pass"' in row
    assert "<script" not in row, row[row.find("<script") - 300:][:600]
    assert "geplante Prüfung" in row
    history = admin_web.get(reverse("history")).content.decode()
    assert 'data-chart="msmtp"' in history and "msmtp: 1 von 2 Tests bestanden" in history


def test_beat_queues_one_check_per_live_server_on_its_own_queue(account, worker_alive):
    gone = Server.objects.create(name="altserver", queue="xmailadmin-altserver")
    WorkerHeartbeat.objects.create(hostname="celery@alt", server=gone,
                                   seen_at=timezone.now() - timedelta(hours=1))  # fmt: skip
    live = Server.objects.create(name="zweitserver", queue="xmailadmin-zweitserver")
    WorkerHeartbeat.objects.create(hostname="celery@zweit", server=live)
    published = []

    def capture(headers=None, routing_key=None, **kwargs):
        published.append((headers["task"], routing_key))

    before_task_publish.connect(capture, weak=False)
    try:
        rows = health_check.start_all()
    finally:
        before_task_publish.disconnect(capture)
    assert sorted(r.server.name for r in rows) == sorted([Server.local().name, "zweitserver"])
    assert sorted(published) == sorted(
        [(health_check.TASK, Server.local().queue), (health_check.TASK, "xmailadmin-zweitserver")]
    )
    assert "health-check" in settings.CELERY_BEAT_SCHEDULE
