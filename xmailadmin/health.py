"""Is a Celery worker running, and does the broker answer? Cheap enough for every page.

The worker writes a WorkerHeartbeat row of its server every few seconds
(signals.py); a page reads the newest of its server with one query. The broker
check opens a connection at most once per ``BROKER_CACHE_SECONDS`` per process.

A Redis broker without persistence (``--save ""``, no AOF) forgets every queued
job when it restarts. ``redis_instance()`` says which Redis answers and since when,
``jobs_in_broker()`` which rows still have a message there (queued or delivered but
not yet acknowledged); ``jobs.expire_lost_in_broker`` fails the rest.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.utils.translation import gettext as _

from .celery import app as celery_app
from .models import Server, WorkerHeartbeat, local_server_name
from .texts import moment

BROKER_CACHE_SECONDS = 5.0

_lock = threading.Lock()
_broker_cache: tuple[float, str] | None = None  # (checked at, error or "")
_instance_cache: tuple[float, RedisInstance | None] | None = None

# Which task argument names which row (tasks.py): the id a message carries.
JOB_ARGUMENTS = {"send_test": "send_id", "probe_all": "run_id", "relay_check": "check_id",
                 "relay_apply": "check_id", "diagnose": "diagnosis_id",
                 "scheduled_check": "send_id"}  # fmt: skip
# Reading more messages than this to decide is not worth it: the rows wait for the limit.
MAX_MESSAGES_READ = 20_000


@dataclass(frozen=True)
class Health:
    broker_error: str  # "" when the broker answers
    worker_seen_at: datetime | None  # newest heartbeat, fresh or not
    worker_alive: bool
    server: str = ""  # another server's name; "" for this machine

    @property
    def ok(self) -> bool:
        return not self.broker_error and self.worker_alive

    @property
    def shown(self) -> tuple:
        """What a page shows of it: the time of the last heartbeat only while no worker is
        alive (a cached page stays valid from one heartbeat to the next)."""
        return (self.broker_error, self.worker_alive, self.server,
                None if self.worker_alive else self.worker_seen_at)  # fmt: skip

    @property
    def problem(self) -> str:
        """What is wrong and what to do, in the user's language; "" when all is well."""
        if self.broker_error:
            return _(
                "The broker is unreachable (%(error)s). Without it, probes and test mails"
                " never reach the worker. Check REDIS_URL and whether Redis answers "
                "(redis-cli ping), then restart the panel with scripts/run.sh."
            ) % {"error": self.broker_error}
        if not self.worker_alive and self.server:
            if self.worker_seen_at is None:
                return _(
                    "The server %(server)s is offline: its worker has never reported. "
                    "Start it there (systemctl start xmailadmin-worker) with "
                    "XMAILADMIN_SERVER_NAME=%(server)s."
                ) % {"server": self.server}
            return _(
                "The server %(server)s is offline: its worker was last seen %(time)s. Jobs "
                "for it would only wait; start its worker there (systemctl start "
                "xmailadmin-worker)."
            ) % {"server": self.server, "time": moment(self.worker_seen_at)}
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
    global _broker_cache, _instance_cache
    with _lock:
        _broker_cache = None
        _instance_cache = None


@dataclass(frozen=True)
class RedisInstance:
    run_id: str  # changes with every start of redis-server
    # This Redis started before this moment, in this machine's clock: now - uptime + 1 s
    # (Redis counts its uptime in whole seconds of its own clock, so the real start is
    # up to a second either side of now - uptime).
    started_before: datetime


def _redis_channel(conn):
    conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
    return conn.default_channel


def uses_redis() -> bool:
    return str(celery_app.conf.broker_url or "").startswith(("redis", "rediss"))


def redis_instance(*, cached: bool = True) -> RedisInstance | None:
    """The Redis broker that answers now; None without Redis or when it does not answer.

    The start is told from this machine's now and Redis' uptime, so the clocks of the
    two machines are never compared. Cached like the broker check unless
    ``cached=False``.
    """
    global _instance_cache
    if not uses_redis():
        return None
    now = time.monotonic()
    with _lock:
        if cached and _instance_cache and now - _instance_cache[0] < BROKER_CACHE_SECONDS:
            return _instance_cache[1]
    try:
        with celery_app.connection_for_write() as conn:
            info = _redis_channel(conn).client.info("server")
        instance = RedisInstance(
            run_id=str(info["run_id"]),
            started_before=datetime.now(UTC)
            - timedelta(seconds=int(info["uptime_in_seconds"]) - 1),
        )
    except Exception:  # unreachable or not Redis after all: nothing to say
        instance = None
    with _lock:
        _instance_cache = (time.monotonic(), instance)
    return instance


def _job_of(payload: dict) -> tuple[str, int] | None:
    """("send_id", 12) for the message of ``send_test(send_id=12)``; None for others."""
    task = str(payload.get("headers", {}).get("task", "")).rsplit(".", 1)[-1]
    argument = JOB_ARGUMENTS.get(task)
    if argument is None:
        return None
    body = payload["body"]
    if payload.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    decoded = json.loads(body)
    kwargs = decoded[1] if isinstance(decoded, list) else decoded.get("kwargs", {})
    return argument, int(kwargs[argument])


def jobs_in_broker(queue: str | None = None) -> set[tuple[str, int]] | None:
    """Every (argument, row id) that still has a message in Redis: waiting in the queue
    (each priority list) or delivered to a worker and not yet acknowledged.

    None when that cannot be told (no Redis, no answer, too many messages, a message
    this code cannot read): then nobody may conclude that a job was lost.
    """
    if not uses_redis():
        return None
    queue = queue or celery_app.conf.task_default_queue
    try:
        with celery_app.connection_for_write() as conn:
            channel = _redis_channel(conn)
            client = channel.client
            lists = dict.fromkeys(channel._q_for_pri(queue, p) for p in channel.priority_steps)
            # One MULTI/EXEC: a message moving from a list to the unacknowledged ones
            # while this reads is seen in one of them, not missed between the two.
            with client.pipeline(transaction=True) as pipe:
                for key in lists:
                    pipe.lrange(key, 0, MAX_MESSAGES_READ)
                pipe.hvals(channel.unacked_key)  # shared by all queues
                *waiting, delivered = pipe.execute()
            payloads = [json.loads(m) for found in waiting for m in found]
            for entry in delivered:
                message, exchange, routing_key = json.loads(entry)
                if queue in (exchange, routing_key):
                    payloads.append(message)
        if len(payloads) > MAX_MESSAGES_READ:
            return None
        jobs = {_job_of(p) for p in payloads}
    except Exception:  # unreachable, or a message of another shape: undecided
        return None
    jobs.discard(None)
    return jobs  # type: ignore[return-value]


# A job counts as lost only when its message is missing from two looks at the broker
# this far apart: a message is briefly in neither place (popped by the worker and not
# yet recorded as unacknowledged, or acknowledged and its row not yet claimed).
LOST_CONFIRM_SECONDS = 2.0
_missing_since: dict[tuple[str, int], float] = {}  # (argument, row id) -> first miss


def missing_for_a_while(missing: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Of the jobs ``jobs_in_broker`` did not find now, those this process also missed
    at a look at least LOST_CONFIRM_SECONDS ago (and not found in between)."""
    now = time.monotonic()
    with _lock:
        for key in list(_missing_since):
            if key not in missing:
                del _missing_since[key]
        for key in missing:
            _missing_since.setdefault(key, now)
        lost = {k for k in missing if now - _missing_since[k] >= LOST_CONFIRM_SECONDS}
        for key in lost:
            del _missing_since[key]
    return lost


def current(newest: datetime | None = None, server: Server | None = None) -> Health:
    """Worker and broker state of ``server`` (this machine if None); ``newest`` heartbeat
    when the caller already read it."""
    if newest is None:
        # By name: one query, also before this machine's row exists.
        mine = {"server": server} if server else {"server__name": local_server_name()}
        beats = WorkerHeartbeat.objects.filter(**mine)
        newest = beats.order_by("-seen_at").values_list("seen_at", flat=True).first()
    if newest is None and server is not None:
        newest = server.last_seen  # a worker that stopped removed its heartbeat
    alive = newest is not None and newest >= WorkerHeartbeat.fresh_since()
    other = server.name if server is not None and server.name != local_server_name() else ""
    return Health(
        broker_error=broker_error(), worker_seen_at=newest, worker_alive=alive, server=other
    )
