"""The life of a job row, in one place: published, claimed, finished, or expired.

    services.start_*  ──publish──►  broker, on the queue of the row's server
         (queued)                      │
                                       ▼
    tasks: run_claimed ──claim──► running ──work──► finish: passed | warning |
                                                            not installed | failed
    expire_stale / expire_lost_in_broker / fail_rows_of_worker ──► failed

A row is always final in the end: its task finishes it, or the expiry fails it when no
worker will (the broker lost the job, the worker stopped or restarted, the time limit
passed). Every change to a final state goes through ``finish``, which changes only a
row that is still active. Tasks are looked up by name (``celery_app.signature``): this
module never imports tasks.py, which imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from billiard.exceptions import WorkerLostError
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure
from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from transports.secrecy import redact
from transports.texts import Text, gettext_noop

from . import health
from .celery import app as celery_app
from .models import (
    ACTIVE_STATES,
    Diagnosis,
    Job,
    ProbeRun,
    RelayJob,
    Server,
    State,
    TestSend,
    WorkerHeartbeat,
)
from .texts import say

log = logging.getLogger(__name__)

JOB_MODELS = (TestSend, ProbeRun, RelayJob, Diagnosis)
# The task argument that carries each kind of row's id (health.JOB_ARGUMENTS).
_JOB_ARGUMENT = {
    TestSend: "send_id",
    ProbeRun: "run_id",
    RelayJob: "check_id",
    Diagnosis: "diagnosis_id",
}


class NotAccepted(Exception):
    """The request cannot be queued now; the message says why and what to do."""


# --- publish ----------------------------------------------------------------------


def publish(row: Job, task: str, **kwargs) -> None:
    """Send the job of a new row to the broker: the one place a job is sent, on the
    queue of the row's server. A broker that refuses it fails the row (NotAccepted)."""
    try:
        _send(task, queue=row.server.queue, kwargs=kwargs)
    except NotAccepted as exc:
        fail(row, str(exc), step="queue")
        raise


def _send(task: str, *, queue: str, kwargs: dict) -> None:
    try:
        celery_app.signature(task).apply_async(kwargs=kwargs, queue=queue)
    except Exception as exc:  # kombu raises several kinds for a dead broker
        health.forget_broker_state()
        log.warning("could not enqueue %s: %s", task, exc)
        raise NotAccepted(
            _("The broker did not accept the job: %(error)s") % {"error": exc}
        ) from exc


# --- claim ------------------------------------------------------------------------


def claim(model: type[Job], pk: int, hostname: str | None) -> Job | None:
    """Queued → running, exactly once; None when another delivery already took it, or when
    the row is another server's: a worker runs and writes only its own server's rows (a
    job that reached the wrong queue is left to its own server, or to the expiry)."""
    mine = Server.local()
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None or row.state != State.QUEUED:
            return None
        if row.server_id != mine.pk:
            log.error("%s %s belongs to server %s, not %s: left alone", model.__name__, pk,
                      row.server_id, mine.name)  # fmt: skip
            return None
        row.state = State.RUNNING
        row.started_at = timezone.now()
        row.worker = hostname or ""
        row.save(update_fields=["state", "started_at", "worker"])
    return row


def run_claimed(
    model: type[Job],
    pk: int,
    hostname: str | None,
    work: Callable,
    *,
    what: str,
    stopped: str,
    limit: float | None = None,
) -> str:
    """Claim the row and run ``work`` on it in its requester's language; a time limit or
    any error still ends the row in a final state (``stopped`` % the limit, or the error).
    ``limit`` is the task's own soft time limit, when it has one (else the setting's).
    An error that may carry a tool's words is the work's to record (``record``): only it
    knows the password to remove."""
    row = claim(model, pk, hostname)
    if row is None:
        return "skipped"
    with translation.override(row.language):
        try:
            work(row)
        except SoftTimeLimitExceeded:
            reason = stopped % {"s": limit or settings.CELERY_TASK_SOFT_TIME_LIMIT}
            fail(row, reason, step="timeout")
        except Exception as exc:  # a final state, whatever went wrong
            log.error("%s %s failed: %s", what, row.id, type(exc).__name__)
            fail(row, described(exc), step="unknown")
    return row.state


def described(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- final states -------------------------------------------------------------


def finish(row: Job, *, state: str, **fields) -> bool:
    """Move an active row to a final state; False if it was already final."""
    fields.update(state=state, finished_at=timezone.now())
    updated = type(row).objects.filter(pk=row.pk, state__in=ACTIVE_STATES).update(**fields)
    if updated:
        for name, value in fields.items():
            setattr(row, name, value)
    return bool(updated)


def record(row: Job, outcome: dict, *, user: str, password: str) -> bool:
    """Finish the row with what a task made of a transport's answer (``state`` and the
    columns). Transports removed the password already; the columns with a tool's words
    (``row.TOOL_WORDS``) lose it once more here, as a row is kept and shown for months."""
    words = type(row).TOOL_WORDS
    return finish(row, **{k: scrubbed(v, user, password) if k in words else v
                          for k, v in outcome.items()})


def scrubbed(value: Any, user: str, password: str) -> Any:
    """A tool's words (a string, or JSON data) as a row keeps them: without the password in
    any spelling and without NUL bytes (PostgreSQL refuses them). A message id stays as it
    is: it names a sentence, it is no tool's word."""
    if isinstance(value, str):
        return redact(value, user, password).replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {k: v if k == "msgid" else scrubbed(v, user, password) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v, user, password) for v in value]
    return value


def fail(row: Job, reason: str | Text, *, step: str, code: str = "") -> bool:
    """Move an active row to failed: a test send keeps ``reason`` as the reason it failed
    at ``step``, the other rows as their error. False if the row was already final."""
    return finish(row, state=State.FAILED, **failure(row, reason, step, code))


def failure(row: Job, reason: str | Text, step: str, code: str = "") -> dict:
    """The columns that say why ``row`` failed. A Text stays data on a test send (said in
    its reader's language when shown, like a transport's reason, ``code`` its name); the
    other rows keep their error as a sentence in their requester's language."""
    if isinstance(row, TestSend):
        if isinstance(reason, Text):
            return {"step": step, "reason": str(reason), "reason_text": reason.to_dict(),
                    "reason_code": code}  # fmt: skip
        return {"step": step, "reason": reason}
    if isinstance(reason, Text):
        with translation.override(getattr(row, "language", None) or settings.LANGUAGE_CODE):
            reason = say(reason)
    return {"error": reason}


# --- expire -------------------------------------------------------------------


# Why the expiry or the worker's main process failed a row: the panel's own steps and
# reason codes, beside those of transports (the step labels: templatetags/panel.py).
WORKER_STEP, BROKER_STEP, TIMEOUT_STEP = "worker", "broker", "timeout"
WORKER_STOPPED = gettext_noop(
    "Worker %(worker)s stopped while the job ran (no more heartbeats). Please start it again."
)
WORKER_RESTARTED = gettext_noop("Worker %(worker)s was restarted while the job ran.")
PROCESS_LOST = gettext_noop(
    "The worker process that ran the job ended abruptly (%(error)s): killed, for example"
    " for lack of memory, or crashed. Please start the job again."
)
NO_RESULT = gettext_noop(
    "No result within the time limit of %(s)d s; the worker was probably stopped."
)
SERVER_OFFLINE = gettext_noop(
    "The server %(server)s is offline: its worker was last seen at %(seen)s, so nothing "
    "would run the job. Start the worker on that server and try again."
)
NOT_TAKEN = gettext_noop("No worker took the job within %(s)d s. Is the worker running?")
BROKER_LOST = gettext_noop(
    "The broker lost the job: Redis was restarted and no longer has it. Please start the "
    "job again."
)


def expire_stale(server: Server | None = None) -> int:
    """Mark rows of ``server`` (this machine if None) failed that no worker will ever
    finish; returns how many.

    A queued row whose job the broker lost (expire_lost_in_broker), a running row
    whose worker stopped sending heartbeats (step "worker"), a running row past the
    hard time limit, and a queued row nobody picked up within that limit ("timeout").
    """
    server = server or Server.local()
    count = expire_lost_in_broker(server=server)
    now = timezone.now()
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 15)
    alive: set[str] | None = None
    for model in JOB_MODELS:
        for row in model.objects.filter(server=server, state__in=ACTIVE_STATES):
            if alive is None:
                alive = _alive_workers(server)
            stale = _offline_reason(row, server, now, alive) or _stale_reason(
                row, now, limit, alive
            )
            if stale is not None:
                count += fail(row, stale[1], step=stale[0], code=stale[2])
    return count


def stale_after_seconds() -> float:
    """A running row is judged no sooner: three heartbeats its worker may have missed."""
    return 3 * settings.XMAILADMIN_HEARTBEAT_SECONDS


def _alive_workers(server: Server) -> set[str]:
    beats = WorkerHeartbeat.objects.filter(
        server=server, seen_at__gte=WorkerHeartbeat.fresh_since()
    )
    return set(beats.values_list("hostname", flat=True))


def _offline_reason(row, server: Server, now, alive: set[str]) -> tuple[str, Text, str] | None:
    """A queued row of a server whose worker was seen once and is gone (no heartbeat for
    three beats): it would only wait for the time limit, so it fails now and says so. A
    server never seen keeps the time limit (a worker may be starting for the first time)."""
    beats = timedelta(seconds=stale_after_seconds())
    if row.state != State.QUEUED or alive or server.last_seen is None:
        return None
    if server.last_seen >= now - beats or row.created_at >= now - beats:
        return None
    seen = timezone.localtime(server.last_seen).strftime("%Y-%m-%d %H:%M:%S")
    return WORKER_STEP, Text(SERVER_OFFLINE, {"server": server.name, "seen": seen}), "offline"


def _stale_reason(row, now, limit: timedelta, alive: set[str]) -> tuple[str, Text, str] | None:
    """(step, reason, code) of a row no worker will finish; None while one may."""
    seconds = {"s": int(limit.total_seconds())}
    if row.state == State.RUNNING:
        started = row.started_at or row.created_at
        beats = timedelta(seconds=stale_after_seconds())
        if row.worker and row.worker not in alive and started < now - beats:
            return WORKER_STEP, Text(WORKER_STOPPED, {"worker": row.worker}), "worker_stopped"
        if started < now - limit:
            return TIMEOUT_STEP, Text(NO_RESULT, seconds), "time_limit"
    elif row.created_at < now - limit:
        return TIMEOUT_STEP, Text(NOT_TAKEN, seconds), "not_taken"
    return None


def expire_lost_in_broker(*, cached: bool = True, server: Server | None = None) -> int:
    """Fail the queued rows of ``server`` (this machine if None) whose job the broker no
    longer has; returns how many.

    Redis without persistence forgets its queues when it restarts, and the worker
    drops what it had fetched but not started (kombu cannot put it back into a Redis
    that is gone). Such a row would wait for the time limit and then blame the worker.
    A queued row is lost when it may have been made before the Redis that answers now
    started and its message is neither in the server's queue nor delivered-but-
    unacknowledged there, at two looks seconds apart (health.missing_for_a_while). With
    AOF or RDB, where the queue survives, nothing is failed. Rows made well after the
    start are not judged: their message went to this Redis. Only rows still queued are
    changed; one a worker claimed meanwhile stays as it is. The worker's heartbeat calls
    this every beat (signals.py).
    """
    if not health.uses_redis():
        return 0
    server = server or Server.local()
    older = _queued_before_the_broker(server, cached=cached)
    if not older:
        return 0
    present = health.jobs_in_broker(server.queue)
    if present is None:
        return 0
    keys = {(_JOB_ARGUMENT[type(row)], row.pk): row for row in older}
    lost = health.missing_for_a_while(keys.keys() - present)
    count = sum(_fail_lost(row) for key, row in keys.items() if key in lost)
    if count:
        log.warning("marked %d queued row(s) failed: the broker lost their jobs", count)
    return count


def _queued_before_the_broker(server: Server, *, cached: bool) -> list[Job]:
    """The server's queued rows that may be older than the Redis that answers now."""
    queued = [
        row
        for model in JOB_MODELS
        for row in model.objects.filter(server=server, state=State.QUEUED).order_by("created_at")
    ]
    if not queued:
        return []
    instance = health.redis_instance(cached=cached)
    if instance is None:
        return []
    return [row for row in queued if row.created_at < instance.started_before]


def _fail_lost(row: Job) -> int:
    """Failed if still queued (``finish`` would also fail a row a worker just claimed)."""
    fields = failure(row, Text(BROKER_LOST), BROKER_STEP, "broker_lost")
    still_queued = type(row).objects.filter(pk=row.pk, state=State.QUEUED)
    return still_queued.update(state=State.FAILED, finished_at=timezone.now(), **fields)


def fail_rows_of_worker(hostname: str, server: Server | None = None) -> int:
    """A worker of ``server`` (this machine if None) (re)starting under this name:
    whatever it was running is lost."""
    server = server or Server.local()
    reason = Text(WORKER_RESTARTED, {"worker": hostname})
    count = 0
    for model in JOB_MODELS:
        for row in model.objects.filter(server=server, state=State.RUNNING, worker=hostname):
            count += fail(row, reason, step=WORKER_STEP, code="worker_restarted")
    return count


@task_failure.connect
def fail_row_of_lost_process(sender=None, exception=None, kwargs=None, **_ignored) -> None:
    """The worker's main process heard that the pool process running a job died (the
    OOM killer, a kill, Celery's hard time limit): its row says so now, not only when
    the time limit for rows is over. A task's own errors never get here: run_claimed
    turns them into a final state."""
    if isinstance(exception, WorkerLostError):
        step, code = WORKER_STEP, "process_lost"
        reason = Text(PROCESS_LOST, {"error": str(exception)})
    elif isinstance(exception, TimeLimitExceeded):
        step, code = TIMEOUT_STEP, "time_limit"
        reason = Text(NO_RESULT, {"s": settings.CELERY_TASK_TIME_LIMIT})
    else:
        return
    for model, argument in _JOB_ARGUMENT.items():
        pk = (kwargs or {}).get(argument)
        row = model.objects.filter(pk=pk).first() if pk is not None else None
        if row is not None:
            fail(row, reason, step=step, code=code)
