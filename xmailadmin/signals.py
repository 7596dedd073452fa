"""Worker heartbeat: each Celery worker writes its row every few seconds.

The heartbeat belongs to the worker's server (this machine), whose ``last_seen`` it
moves too. The pages read the newest heartbeat of their server to say "no worker
running" at once, and ``jobs.expire_stale`` fails rows whose worker stopped beating.
A second thread, as often, fails the queued rows whose job a restarted Redis lost
(``jobs.expire_lost_in_broker``), so they say so within seconds instead of blaming
the worker when the time limit is over.
"""

from __future__ import annotations

import logging
import os
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger(__name__)
_stop = threading.Event()


def beat_once(hostname: str) -> None:
    from .models import Server, WorkerHeartbeat

    now = timezone.now()
    server = Server.local()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": now, "pid": os.getpid(), "server": server}
    )
    Server.objects.filter(pk=server.pk).update(last_seen=now)


def watch_broker(last_run_id: str | None) -> str | None:
    """Fail what a restarted broker lost; returns the run id of the Redis seen now."""
    from . import health, jobs

    if not health.uses_redis():
        return None
    instance = health.redis_instance(cached=False)
    if instance is None:
        return last_run_id
    if last_run_id and instance.run_id != last_run_id:
        log.warning("the broker was restarted (Redis run_id %s)", instance.run_id)
    jobs.expire_lost_in_broker()  # uses the answer just read
    return instance.run_id


def _loop(hostname: str) -> None:
    interval = settings.XMAILADMIN_HEARTBEAT_SECONDS
    while not _stop.wait(interval):
        try:
            close_old_connections()
            beat_once(hostname)
        except Exception as exc:  # keep beating; the next try may succeed
            log.warning("heartbeat failed: %s", exc)
    connection.close()


def _watch_loop() -> None:
    # A thread of its own: a broker that does not answer must not delay the heartbeat
    # (three missed beats fail the running rows as "worker stopped").
    interval = settings.XMAILADMIN_HEARTBEAT_SECONDS
    run_id = None
    while not _stop.wait(interval):
        try:
            close_old_connections()
            run_id = watch_broker(run_id)
        except Exception as exc:  # keep watching; the next try may succeed
            log.warning("broker watch failed: %s", exc)
    connection.close()


@worker_ready.connect
def start_heartbeat(sender=None, **kwargs) -> None:
    from . import jobs
    from .models import Server, WorkerHeartbeat

    hostname = getattr(sender, "hostname", None) or "worker"
    server = Server.local()
    lost = jobs.fail_rows_of_worker(hostname, server)
    if lost:
        log.warning("marked %d row(s) of the previous %s failed", lost, hostname)
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"seen_at": now, "started_at": now, "pid": os.getpid(), "server": server},
    )
    Server.objects.filter(pk=server.pk).update(last_seen=now)
    connection.close()
    _stop.clear()
    threading.Thread(
        target=_loop, args=(hostname,), name="xmailadmin-heartbeat", daemon=True
    ).start()
    threading.Thread(target=_watch_loop, name="xmailadmin-broker-watch", daemon=True).start()


@worker_shutdown.connect
def stop_heartbeat(sender=None, **kwargs) -> None:
    from .models import WorkerHeartbeat

    _stop.set()
    hostname = getattr(sender, "hostname", None)
    if hostname:
        try:
            WorkerHeartbeat.objects.filter(hostname=hostname).delete()
        except Exception as exc:
            log.warning("could not remove heartbeat: %s", exc)
