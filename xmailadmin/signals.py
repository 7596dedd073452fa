"""Worker heartbeat: each Celery worker writes its row every few seconds.

The pages read the newest heartbeat to say "no worker running" at once, and
``services.expire_stale`` fails rows whose worker stopped beating.
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
    from .models import WorkerHeartbeat

    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": now, "pid": os.getpid()}
    )


def _loop(hostname: str) -> None:
    interval = settings.XMAILADMIN_HEARTBEAT_SECONDS
    while not _stop.wait(interval):
        try:
            close_old_connections()
            beat_once(hostname)
        except Exception as exc:  # keep beating; the next try may succeed
            log.warning("heartbeat failed: %s", exc)
    connection.close()


@worker_ready.connect
def start_heartbeat(sender=None, **kwargs) -> None:
    from . import services
    from .models import WorkerHeartbeat

    hostname = getattr(sender, "hostname", None) or "worker"
    lost = services.fail_rows_of_worker(hostname)
    if lost:
        log.warning("marked %d row(s) of the previous %s failed", lost, hostname)
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"seen_at": timezone.now(), "started_at": timezone.now(), "pid": os.getpid()},
    )
    connection.close()
    _stop.clear()
    threading.Thread(
        target=_loop, args=(hostname,), name="xmailadmin-heartbeat", daemon=True
    ).start()


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
