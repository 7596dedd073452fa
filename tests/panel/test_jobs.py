"""The life of a job row (xmailadmin/jobs.py): claimed once, published to the queue of
its server, expired per server; and every row the services make is this machine's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.utils import timezone

from xmailadmin import jobs, order, services
from xmailadmin.celery import app as celery_app
from xmailadmin.models import (
    ProbeRun,
    RelayCheck,
    Server,
    State,
    TestSend,
    TransportSetting,
    WorkerHeartbeat,
)

pytestmark = pytest.mark.django_db


def _send(account, **fields) -> TestSend:
    return TestSend.objects.create(
        account=account, account_name=account.name, command=fields.pop("command", "curl"),
        recipient="a@example.org", **fields,
    )  # fmt: skip


@pytest.fixture
def elsewhere(db) -> Server:
    return Server.objects.create(name="elsewhere.example.org", queue="xmailadmin-elsewhere")


@pytest.fixture
def published():
    """(task name, routing key, queues declared) of every message sent meanwhile."""
    messages: list[tuple[str, str, list[str]]] = []

    def capture(sender=None, routing_key=None, declare=None, **kwargs):
        messages.append((sender, routing_key, [q.name for q in declare or []]))

    before_task_publish.connect(capture, weak=False)
    yield messages
    before_task_publish.disconnect(capture)


# --- claim -------------------------------------------------------------------------------


def test_a_row_is_claimed_once(offline_account):
    send = _send(offline_account)
    assert jobs.claim(TestSend, send.pk, "celery@one") is not None
    assert jobs.claim(TestSend, send.pk, "celery@two") is None
    send.refresh_from_db()
    assert (send.state, send.worker) == (State.RUNNING, "celery@one")


def test_a_job_delivered_twice_runs_once_and_is_skipped_the_second_time(offline_account):
    send = _send(offline_account)
    ran = []

    def work(row):
        ran.append(row.pk)
        jobs.finish(row, state=State.PASSED)

    def run():
        return jobs.run_claimed(
            TestSend, send.pk, "celery@one", work, what="test", stopped="", crashed=repr
        )

    assert run() == State.PASSED
    assert run() == "skipped"
    assert ran == [send.pk]


# --- publish -----------------------------------------------------------------------------


def test_a_job_is_published_to_the_queue_of_its_rows_server(
    offline_account, elsewhere, published
):
    send = _send(offline_account, server=elsewhere)
    jobs.publish(send, services.SEND_TEST, send_id=send.pk)
    assert published == [
        ("xmailadmin.tasks.send_test", "xmailadmin-elsewhere", ["xmailadmin-elsewhere"])
    ]


def test_a_row_made_here_goes_to_the_queue_this_machines_worker_takes(
    offline_account, worker_alive, published
):
    (send,) = services.start_tests(offline_account, ["curl"], None)
    queue = celery_app.conf.task_default_queue
    assert send.server == Server.local() and send.server.queue == queue
    assert [(routing_key, queues) for _task, routing_key, queues in published] == [
        (queue, [queue])
    ]


def test_a_broker_that_refuses_the_job_fails_the_row(offline_account, monkeypatch):
    def refused(task, **kwargs):
        raise jobs.NotAccepted("refused")

    monkeypatch.setattr(jobs, "_send", refused)
    run = ProbeRun.objects.create()
    with pytest.raises(jobs.NotAccepted):
        jobs.publish(run, services.PROBE_ALL, run_id=run.pk)
    run.refresh_from_db()
    assert (run.state, run.error) == (State.FAILED, "refused")


# --- expire ------------------------------------------------------------------------------


def test_expiry_fails_a_running_row_of_a_stopped_worker_of_its_own_server_only(
    offline_account, elsewhere
):
    started = timezone.now() - timedelta(seconds=30)
    here = _send(offline_account, state=State.RUNNING, worker="celery@gone", started_at=started)
    there = _send(
        offline_account, command="perl", server=elsewhere, state=State.RUNNING,
        worker="celery@gone", started_at=started,
    )  # fmt: skip
    assert jobs.expire_stale() == 1
    here.refresh_from_db()
    there.refresh_from_db()
    assert here.state == State.FAILED and "celery@gone" in here.reason
    assert there.state == State.RUNNING, "a row of another server is left alone"
    assert jobs.expire_stale(elsewhere) == 1


def test_a_heartbeat_on_another_server_does_not_keep_a_row_here_running(
    offline_account, elsewhere
):
    WorkerHeartbeat.objects.create(hostname="celery@twin", server=elsewhere)
    send = _send(
        offline_account, state=State.RUNNING, worker="celery@twin",
        started_at=timezone.now() - timedelta(seconds=30),
    )  # fmt: skip
    assert jobs.expire_stale() == 1
    send.refresh_from_db()
    assert send.state == State.FAILED


def test_a_restarted_worker_fails_the_rows_of_its_own_server_only(offline_account, elsewhere):
    here = _send(offline_account, state=State.RUNNING, worker="celery@host")
    there = ProbeRun.objects.create(server=elsewhere, state=State.RUNNING, worker="celery@host")
    assert jobs.fail_rows_of_worker("celery@host") == 1
    here.refresh_from_db()
    there.refresh_from_db()
    assert (here.state, there.state) == (State.FAILED, State.RUNNING)


# --- the local server --------------------------------------------------------------------


def test_there_is_one_server_this_machine_and_it_follows_the_configured_queue(monkeypatch):
    server = Server.local()
    assert Server.objects.count() == 1
    assert server.queue == celery_app.conf.task_default_queue
    monkeypatch.setitem(celery_app.conf, "task_default_queue", "xmailadmin-moved")
    assert Server.local().pk == server.pk
    assert Server.objects.get().queue == "xmailadmin-moved"


def test_every_row_the_services_make_belongs_to_this_machine(offline_account, worker_alive):
    services.start_probe(None)
    services.start_tests(offline_account, ["curl", "perl"], None)
    check = services.start_relay_check("postfix", offline_account, None)
    RelayCheck.objects.filter(pk=check.pk).update(
        state=State.PASSED, config={"mta": "postfix", "files": []}
    )
    check.refresh_from_db()
    services.start_relay_apply(check, None)
    order.current_order()
    here = Server.local().pk
    for model in (ProbeRun, TestSend, RelayCheck, TransportSetting, WorkerHeartbeat):
        assert set(model.objects.values_list("server", flat=True)) == {here}, model
    assert RelayCheck.objects.count() == 2 and TestSend.objects.count() == 2
