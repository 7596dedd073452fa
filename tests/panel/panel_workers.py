"""The test session's broker and real Celery worker processes, shared by the panel's
tests and fixtures (a module of its own: ``from conftest import`` would find whichever
conftest.py was imported first)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from kombu import pools as kombu_pools

from xmailadmin import health
from xmailadmin.celery import app as celery_app

REPO = Path(__file__).resolve().parents[2]
SESSION_QUEUE = f"xmailadmin-test-{uuid.uuid4().hex[:12]}"


def use_broker(url: str, options: dict | None = None) -> None:
    """Point this process's Celery app at another broker.

    The producer pools are cached per app; they are dropped the same way Celery
    drops them after a fork (Celery._after_fork), so the next publish connects anew.
    """
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = options or {}
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    # kombu keeps producer pools per broker URL in a global registry; one of a URL used
    # before would hand out the connection pool closed above ("Acquire on closed pool").
    kombu_pools.reset()
    health.forget_broker_state()


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    log: Path
    queue: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def database_url() -> str:
    from django.db import connection

    data = connection.settings_dict
    if data["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{data['NAME']}"
    if "postgresql" in data["ENGINE"]:
        auth = data["USER"] + (f":{data['PASSWORD']}" if data.get("PASSWORD") else "")
        host = f"{data['HOST'] or '127.0.0.1'}:{data['PORT'] or 5432}"
        return f"postgres://{auth}@{host}/{data['NAME']}"
    raise RuntimeError(f"no worker for database engine {data['ENGINE']}")


def worker_env(queue: str, var: Path, **extra: str) -> dict[str, str]:
    """The environment of a test worker: the test database and keys, Redis, ``queue``."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(),
        "XMAILADMIN_CELERY_QUEUE": queue,
        "XMAILADMIN_FERNET_KEY": ",".join(settings.FERNET_KEYS),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "XMAILADMIN_HEARTBEAT_SECONDS": "1",
        "XMAILADMIN_VAR_DIR": str(var),
        # Never the machine's /var/spool/xmailadmin: each worker its own outbox.
        "XMAILADMIN_OUTBOX": str(var / "outbox"),
        **extra,
    }


@contextmanager
def worker_process(queue: str, var: Path, **extra: str) -> Iterator[WorkerProcess]:
    """``celery -A xmailadmin worker`` on Redis for ``queue``, reading and writing the
    test database; stopped (TERM, then KILL) on leaving. ``extra``: more environment."""
    log = var / "worker.log"
    env = worker_env(queue, var, XMAILADMIN_LOG_LEVEL="DEBUG", **extra)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "xmailadmin", "worker",
                "--loglevel", "INFO", "--concurrency", "4", "--pool", "prefork",
                "--hostname", f"{queue}@%h", "--without-mingle", "--without-gossip",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    worker = WorkerProcess(proc, log, queue)
    try:
        deadline = time.monotonic() + 30
        while " ready." not in worker.log_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start:\n" + worker.log_text()[-3000:])
            time.sleep(0.2)
        yield worker
    finally:
        stop_worker(proc)
        if redis_answers(redis_url()) and "REDIS_URL" not in extra:
            with celery_app.connection_for_write() as conn:
                conn.default_channel.queue_delete(queue)


def stop_worker(proc: subprocess.Popen) -> None:
    """TERM, as systemd stops it; KILL its whole group when it does not end in 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
