"""Is a Celery worker running, and does the broker answer? Cheap enough for every page.

The worker writes a WorkerHeartbeat row every few seconds (signals.py); a
page reads it with one query. The broker check opens a connection at most
once per ``BROKER_CACHE_SECONDS`` per process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.utils.translation import gettext as _

from .celery import app as celery_app
from .models import WorkerHeartbeat

BROKER_CACHE_SECONDS = 5.0

_lock = threading.Lock()
_broker_cache: tuple[float, str] | None = None  # (checked at, error or "")


@dataclass(frozen=True)
class Health:
    broker_error: str  # "" when the broker answers
    worker_seen_at: datetime | None  # newest heartbeat, fresh or not
    worker_alive: bool

    @property
    def ok(self) -> bool:
        return not self.broker_error and self.worker_alive

    @property
    def problem(self) -> str:
        """What is wrong and what to do, in the user's language; "" when all is well."""
        if self.broker_error:
            return _(
                "The broker is unreachable (%(error)s). Without it, probes and test mails"
                " never reach the worker. Check REDIS_URL and whether Redis answers "
                "(redis-cli ping), then restart the panel with scripts/run.sh."
            ) % {"error": self.broker_error}
        if not self.worker_alive:
            return _(
                "No worker is running: probes and test mails would wait forever. Start "
                "the panel with scripts/run.sh (web, worker and scheduler) or the worker "
                "alone with .venv/bin/celery -A xmailadmin worker."
            )
        return ""


def _check_broker() -> str:
    url = str(celery_app.conf.broker_url or "")
    if url.startswith("filesystem"):
        options = celery_app.conf.broker_transport_options or {}
        folder = Path(options.get("data_folder_in", "."))
        if not folder.is_dir():
            return _("folder %(folder)s is missing") % {"folder": folder}
        return ""
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
    except Exception as exc:  # any connection error means "unreachable"
        return f"{type(exc).__name__}: {exc}"[:300]
    return ""


def broker_error() -> str:
    global _broker_cache
    now = time.monotonic()
    with _lock:
        if _broker_cache and now - _broker_cache[0] < BROKER_CACHE_SECONDS:
            return _broker_cache[1]
    error = _check_broker()
    with _lock:
        _broker_cache = (time.monotonic(), error)
    return error


def forget_broker_state() -> None:
    global _broker_cache
    with _lock:
        _broker_cache = None


def current(newest: datetime | None = None) -> Health:
    """Worker and broker state; ``newest`` heartbeat when the caller already read it."""
    if newest is None:
        newest = (
            WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
        )
    alive = newest is not None and newest >= WorkerHeartbeat.fresh_since()
    return Health(broker_error=broker_error(), worker_seen_at=newest, worker_alive=alive)
