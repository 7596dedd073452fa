"""In the worker's main process: start a delivery whenever xmail-sendmail drops a
message (it writes into the outbox's trigger FIFO), and look on its own every
``XMAILADMIN_OUTBOX_SCAN`` seconds for retries that fell due.

A thread, not a beat schedule: a message should leave within a second, not at the
next tick, and a worker without beat (``manage.py`` setups, the tests) still delivers.
When the broker is down the wake-up is lost, never the message: the next look finds it.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutting_down
from django.db import close_old_connections

from outbox import spool, store

log = logging.getLogger(__name__)
_stop = threading.Event()


def _wake() -> None:
    from . import delivery, tasks

    try:
        close_old_connections()
        if delivery.due_now():
            tasks.deliver_outbox.delay()
    except Exception as exc:  # the broker or the database is away: the next look retries
        log.warning("outbox: could not start a delivery: %s", exc)


def _watch(folder, every: float) -> None:
    try:
        store.listen(folder, _wake, every, _stop.is_set)
    except OSError as exc:
        log.error("outbox: not watching %s: %s", folder, exc)


def start(**kwargs) -> None:
    from django.conf import settings

    from . import delivery

    folder = delivery.root()
    try:
        spool.prepare(folder)
    except OSError as exc:  # not ours to make: the install made it, or it says why
        log.warning("outbox: cannot prepare %s: %s", folder, exc)
    _stop.clear()
    every = float(settings.XMAILADMIN_OUTBOX_SCAN)
    threading.Thread(target=_watch, args=(folder, every), name="outbox-watch", daemon=True).start()
    log.info("outbox: watching %s (and every %g s)", folder, every)


def stop(**kwargs) -> None:
    _stop.set()


worker_ready.connect(start, weak=False, dispatch_uid="xmailadmin-outbox-watch")
worker_shutting_down.connect(stop, weak=False, dispatch_uid="xmailadmin-outbox-watch-stop")
