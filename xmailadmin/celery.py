"""The Celery app, configured from Django's settings (``CELERY_*``)."""

from __future__ import annotations

import functools
import logging
import os

from celery import Celery, signals
from celery.utils.log import get_multiprocessing_logger

from .logtime import zone_handlers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xmailadmin.settings")


def _close_redis_channels_even_when_the_drain_fails() -> None:
    """Work around a kombu bug that kills the worker when Redis restarts (kombu 5.7.0).

    When the broker goes away, the worker (celery/worker/consumer/consumer.py,
    ``on_connection_error_after_connected``) first calls ``connection.collect()`` and
    then ``connection.close()``. kombu's Redis ``Channel.close()``
    (kombu/transport/redis.py, ``close``) begins by draining a BRPOP that is still in
    flight (``if self._in_poll: self._brpop_read()``, added by kombu PR #1733 so a
    popped task is not lost at shutdown). If the loss was noticed on another socket
    first (the remote-control pub/sub connection), that drain raises ConnectionError
    and ``close()`` stops before marking the channel closed; ``collect()`` swallows
    the error and sets ``transport.client = None`` (kombu/connection.py,
    ``_do_close_transport``). The second ``close()`` then really closes the channel,
    restores the unacknowledged messages (virtual/base.py ``restore_unacked_once`` →
    redis.py ``QoS.restore_unacked`` → ``conn_or_acquire`` → ``_connparams``) and
    reads ``self.connection.client.hostname`` on None: AttributeError, which is no
    connection error, so Celery ends the worker with "Unrecoverable error" (the same
    symptom as kombu issues #582 and #970, from another path).

    Fix: if ``close()`` fails with a connection error before the channel is closed,
    close it once more right away. The drain has run (``_brpop_read`` always clears
    ``_in_poll``), so the second call goes through the normal teardown while the
    transport still knows the broker; its connection errors are ignored by kombu's
    ``maybe_close_channel`` as on any broker loss. Remove this when kombu closes the
    channel after a failed drain itself (tests/panel/test_broker_restart.py shows it).
    """
    try:
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - redis-py is a dependency
        return
    original = kombu_redis.Channel.close
    if getattr(original, "xmailadmin_workaround", False):
        return

    @functools.wraps(original)
    def close(self) -> None:
        try:
            original(self)
        except self.connection_errors:
            if self.closed:
                raise
            original(self)

    close.xmailadmin_workaround = True  # type: ignore[attr-defined]
    kombu_redis.Channel.close = close


_close_redis_channels_even_when_the_drain_fails()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _zoned_timestamps(logger: object = None, **kwargs: object) -> None:
    """Celery's own handlers (the pool's, the tasks') write the time as Django's do."""
    zone_handlers(logging.getLogger(), get_multiprocessing_logger(), logging.getLogger("celery"))
    if isinstance(logger, logging.Logger):
        zone_handlers(logger)


app = Celery("xmailadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

OUTBOX_TASKS = frozenset({"xmailadmin.tasks.deliver_outbox"})


def outbox_queue() -> str:
    """The deliveries' own queue, beside this machine's (a busy "test all" never holds
    up an application's mail, nor the other way round)."""
    return f"{app.conf.task_default_queue}.outbox"


def route(name: str, args, kwargs, options, task=None, **kw) -> dict | None:
    return {"queue": outbox_queue()} if name in OUTBOX_TASKS else None
