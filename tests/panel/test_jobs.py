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
    RelayJob,
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


# --- record ------------------------------------------------------------------------------


def test_a_recorded_outcome_keeps_no_password_but_every_sentence_whole(offline_account):
    """The password is scrubbed from a tool's words (the values of a sentence, its
    transcript) wherever it hides; the sentence's message id and the state, step and
    code are no tool's words and stay as they are, even when the password is one of them."""
    send = _send(offline_account, state=State.RUNNING)
    sentence = "%(command)s is not installed on this server"
    outcome = {
        "state": State.FAILED,
        "step": "server",
        "reason_code": "server",
        "reason_text": {"msgid": sentence, "params": {"command": "server\x00"}},
        "transcript": "AUTH PLAIN AHVzZXIAc2VydmVy\nserver",
    }
    assert jobs.record(send, outcome, user="user", password="server")
    send.refresh_from_db()
    assert (send.state, send.step, send.reason_code) == (State.FAILED, "server", "server")
    assert send.reason_text == {"msgid": sentence, "params": {"command": "********\\x00"}}
    assert "server" not in send.transcript and "AHVzZXIAc2VydmVy" not in send.transcript


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
            TestSend, send.pk, "celery@one", work, what="test", stopped=""
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
    RelayJob.objects.filter(pk=check.pk).update(
        state=State.PASSED, config={"mta": "postfix", "files": []}
    )
    check.refresh_from_db()
    services.start_relay_apply(check, None)
    order.current_order()
    here = Server.local().pk
    for model in (ProbeRun, TestSend, RelayJob, TransportSetting, WorkerHeartbeat):
        assert set(model.objects.values_list("server", flat=True)) == {here}, model
    assert RelayJob.objects.count() == 2 and TestSend.objects.count() == 2


# --- why a row expired: its own step, its reason as data ----------------------------------


def _shown(send: TestSend, language: str) -> tuple[str, str]:
    """(step label, reason) as the overview shows them to a reader of ``language``."""
    from django.utils import translation

    from xmailadmin.templatetags.panel import step_label

    with translation.override(language):
        return step_label(send.step), send.explanation


def test_a_stopped_worker_is_its_own_step_and_reason_not_a_timeout(offline_account):
    send = _send(
        offline_account, state=State.RUNNING, worker="celery@gone",
        started_at=timezone.now() - timedelta(seconds=60), language="de",
    )  # fmt: skip
    assert jobs.expire_stale() == 1
    send.refresh_from_db()
    assert (send.step, send.reason_code) == ("worker", "worker_stopped")
    assert send.reason_text == {"msgid": jobs.WORKER_STOPPED, "params": {"worker": "celery@gone"}}
    # Stored as data: each reader gets it in their own words, whoever asked.
    step, reason = _shown(send, "en")
    assert step == "worker stopped" and reason.startswith("Worker celery@gone stopped while")
    step, reason = _shown(send, "de")
    assert step == "Worker gestoppt" and "celery@gone" in reason and "Worker" in reason
    assert "stopped" not in reason


def test_the_time_limit_stays_a_timeout_and_a_lost_job_is_the_brokers(
    offline_account, worker_alive, settings
):
    alive = WorkerHeartbeat.objects.values_list("hostname", flat=True).first()
    limit = settings.CELERY_TASK_TIME_LIMIT + 60
    late = _send(
        offline_account, state=State.RUNNING, worker=alive,
        started_at=timezone.now() - timedelta(seconds=limit),
    )  # fmt: skip
    never = _send(
        offline_account, command="python3", state=State.QUEUED,
        created_at=timezone.now() - timedelta(seconds=limit),
    )  # fmt: skip
    assert jobs.expire_stale() == 2
    late.refresh_from_db()
    never.refresh_from_db()
    assert (late.step, late.reason_code) == ("timeout", "time_limit")
    assert (never.step, never.reason_code) == ("timeout", "not_taken")


def test_a_job_the_broker_lost_is_the_brokers_step(offline_account):
    send = _send(offline_account, state=State.QUEUED, language="de")
    assert jobs._fail_lost(send) == 1
    send.refresh_from_db()
    assert (send.step, send.reason_code) == ("broker", "broker_lost")
    assert _shown(send, "de") == (
        "Broker (Redis)",
        "Der Broker hat den Auftrag verloren: Redis wurde neu gestartet und hat ihn nicht "
        "mehr. Bitte erneut auslösen.",
    )


def test_a_restarted_worker_says_so_as_its_own_step(offline_account):
    send = _send(offline_account, state=State.RUNNING, worker="celery@host")
    run = ProbeRun.objects.create(state=State.RUNNING, worker="celery@host")
    assert jobs.fail_rows_of_worker("celery@host") == 2
    send.refresh_from_db()
    run.refresh_from_db()
    assert (send.step, send.reason_code) == ("worker", "worker_restarted")
    assert _shown(send, "en")[1] == "Worker celery@host was restarted while the job ran."
    # A probe keeps a sentence: in the panel's language, as it has no reader of its own.
    assert run.error == "Der Worker celery@host wurde neu gestartet, während der Auftrag lief."


def test_a_pool_process_killed_mid_job_fails_its_row_at_once(offline_account):
    """What the worker's main process hears when the OOM killer takes a pool process:
    Celery's task_failure with WorkerLostError and the task's arguments."""
    from billiard.exceptions import WorkerLostError
    from celery.signals import task_failure

    send = _send(offline_account, state=State.RUNNING, worker="celery@here")
    lost = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 3.")
    task_failure.send(sender=None, task_id="t", exception=lost, kwargs={"send_id": send.pk})
    send.refresh_from_db()
    assert (send.state, send.step, send.reason_code) == (State.FAILED, "worker", "process_lost")
    assert "signal 9" in _shown(send, "en")[1]
    assert "Arbeitsspeicher" in _shown(send, "de")[1]
