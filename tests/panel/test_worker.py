"""The task path end to end, once: views → Redis → a real Celery worker process → rows.

The worker is ``celery -A xmailadmin worker`` started by the celery_worker_process
fixture, on Redis, sharing the test database file with this process.
"""

from __future__ import annotations

import io
import os
import signal
import time

import pytest
from celery.signals import before_task_publish
from django.core.management import call_command
from django.urls import reverse
from panel_workers import worker_process

from transports.catalogue import KEYS
from xmailadmin import services
from xmailadmin.celery import app as celery_app
from xmailadmin.models import Account, ProbeRun, State, TestSend

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

HTMX = {"HTTP_HX_REQUEST": "true"}
TEST_ID_HEADER = "X-Xmailadmin-Test-Id"
COMMANDS = ["python3", "curl", "mailx-heirloom"]  # two that send, one that is never on Debian 12


def poll_until_final(client, url: str, timeout: float = 60, log=None) -> None:
    """What the page does: GET every few hundred ms until the server answers 286."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(url, **HTMX)
        assert response.status_code in (200, 286)
        if response.status_code == 286:
            return
        time.sleep(0.3)
    tail = (log() if log else "")[-4000:]
    raise AssertionError(f"{url} still polling after {timeout} s\n{tail}")


def test_test_all_and_a_probe_run_in_a_real_worker(live_worker, smtp_server, client, panel_admin):
    client.force_login(panel_admin)
    password = smtp_server.password
    published: list[str] = []

    def capture(body=None, headers=None, **kwargs):
        published.append(repr(body) + repr(headers))

    before_task_publish.connect(capture, weak=False)
    try:
        response = client.post(
            reverse("account-new"),
            {
                "name": "Testserver", "host": smtp_server.host,
                "port": str(smtp_server.starttls_port), "mode": "",
                "username": smtp_server.user, "password": password,
                "sender": "panel@example.org", "recipient": "admin@example.org",
                "ca_file": str(smtp_server.ca_file), "verify": "on", "is_default": "on",
            },
        )  # fmt: skip
        assert response.status_code == 302
        account = Account.objects.get()
        rest = [k for k in KEYS if k not in COMMANDS]
        client.post(reverse("order"), {"order": COMMANDS + rest, "on": COMMANDS})

        started = time.monotonic()
        response = client.post(reverse("send-all", args=[account.pk]), **HTMX)
        assert response.status_code == 200, response.content[:500]
        for key in COMMANDS:
            url = reverse("row", args=[account.pk, key])
            poll_until_final(client, url, log=live_worker.log_text)
        click_to_final = time.monotonic() - started

        run_response = client.post(reverse("probe-start"), **HTMX)
        assert run_response.status_code == 200
        run = ProbeRun.objects.get()
        poll_until_final(client, reverse("probe-status", args=[run.pk]))
    finally:
        before_task_publish.disconnect(capture)

    sends = {s.command: s for s in TestSend.objects.all()}
    assert sorted(sends) == sorted(COMMANDS)
    for key in ("python3", "curl"):
        assert sends[key].state in (State.PASSED, State.WARNING), (key, sends[key].reason)
        assert sends[key].worker.startswith(live_worker.queue), "ran in the worker process"
        assert smtp_server.find(TEST_ID_HEADER, str(sends[key].test_id))
    assert sends["mailx-heirloom"].state == State.NOT_INSTALLED
    assert sends["mailx-heirloom"].step == "unsupported"
    slowest = max(s.duration_s or 0 for s in sends.values())
    print(f"\nclick-to-final {click_to_final:.2f} s, slowest single send {slowest:.2f} s")

    run.refresh_from_db()
    assert run.state == State.PASSED, run.error
    assert run.results.count() == len(KEYS)

    # The password went to the SMTP server and nowhere else.
    assert published and all(password not in p for p in published)
    assert password not in live_worker.log_text()
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert password not in dump.getvalue()
    detail = reverse("send-detail", args=[sends["curl"].pk])
    for url in (reverse("dashboard"), reverse("history"), detail):
        assert password not in client.get(url).content.decode()


def test_a_send_left_running_by_a_killed_worker_is_failed_with_that_reason(
    live_worker, silent_server, tmp_path, client, panel_admin
):
    # A worker of its own, so killing it leaves the session's worker alone.
    queue = f"{live_worker.queue}-doomed"
    account = Account(
        name="Stumm", host="127.0.0.1", port=silent_server.port, username="u",
        sender="panel@example.org", recipient="admin@example.org", is_default=True,
    )  # fmt: skip
    account.set_password("S3cret-pw")
    account.save()
    client.force_login(panel_admin)
    default_queue = celery_app.conf.task_default_queue
    with worker_process(queue, tmp_path) as doomed:
        celery_app.conf.task_default_queue = queue
        try:
            (send,) = services.start_tests(account, ["python3"], panel_admin)
        finally:
            celery_app.conf.task_default_queue = default_queue
        wait_until(lambda: TestSend.objects.get(pk=send.pk).state == State.RUNNING, doomed)
        # The send hangs on the silent server; the worker dies under it, as in a crash.
        os.killpg(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait()

    url = reverse("row", args=[account.pk, "python3"])
    poll_until_final(client, url, timeout=30)
    send.refresh_from_db()
    assert send.state == State.FAILED
    # In the language of the one who clicked: German here.
    assert f"Der Worker {queue}@" in send.explanation
    assert "aufgehört zu arbeiten, während der Auftrag lief" in send.explanation


def wait_until(condition, worker, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met:\n" + worker.log_text()[-3000:])
        time.sleep(0.2)
