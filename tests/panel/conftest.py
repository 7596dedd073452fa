"""Fixtures of the panel's tests: users with roles, an account on the test SMTP server,
the Celery broker of the test session, and a real Celery worker process.

The test database is a SQLite *file* (not the in-memory default) so that a
worker process started by a test sees the same rows; with DATABASE_URL
pointing at PostgreSQL the test database there is used instead.
"""

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

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from kombu import pools as kombu_pools

from xmailadmin import health
from xmailadmin.celery import app as celery_app
from xmailadmin.models import ADMIN_GROUP, SUPPORT_GROUP, Account, WorkerHeartbeat

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cr3t-Pässwort;$(echo nope)"  # shell characters on purpose: never reaches a shell
SESSION_QUEUE = f"xmailadmin-test-{uuid.uuid4().hex[:12]}"


# --- database and broker of the session ----------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


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


@pytest.fixture(scope="session", autouse=True)
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Tasks queued by view tests land in a private folder, never in var/celery."""
    folder = tmp_path_factory.mktemp("broker")
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir()
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    celery_app.conf.task_default_queue = SESSION_QUEUE
    use_broker("filesystem://", options)
    return options


@pytest.fixture(autouse=True)
def _fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts without cached pages (ids repeat after a rolled-back test)."""
    from django.core.cache import cache

    cache.clear()


# --- users and roles -----------------------------------------------------------------


def _user(django_user_model, username: str, group: str):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def panel_admin(db, django_user_model):
    return _user(django_user_model, "chef", ADMIN_GROUP)


@pytest.fixture
def support_user(db, django_user_model):
    return _user(django_user_model, "support", SUPPORT_GROUP)


@pytest.fixture
def admin_web(client, panel_admin):
    client.force_login(panel_admin)
    return client


@pytest.fixture
def support_web(client, support_user):
    client.force_login(support_user)
    return client


# --- accounts and worker state ---------------------------------------------------------


@pytest.fixture
def account(db, smtp_server) -> Account:
    """The default account, on the STARTTLS port of the test SMTP server."""
    acc = Account(
        name="Testserver",
        host=smtp_server.host,
        port=smtp_server.starttls_port,
        username=smtp_server.user,
        sender="panel@example.org",
        recipient="admin@example.org",
        ca_file=str(smtp_server.ca_file),
        is_default=True,
    )
    acc.set_password(smtp_server.password)
    acc.save()
    return acc


@pytest.fixture
def offline_account(db) -> Account:
    """An account that needs no SMTP server: for pages and permissions."""
    acc = Account(
        name="Büro",
        host="smtp.example.org",
        port=587,
        username="buero@example.org",
        sender="buero@example.org",
        recipient="admin@example.org",
        is_default=True,
    )
    acc.set_password(PASSWORD)
    acc.save()
    return acc


@pytest.fixture
def worker_alive(db) -> WorkerHeartbeat:
    """A fresh heartbeat, as a running worker writes it (no process needed)."""
    return WorkerHeartbeat.objects.create(hostname="celery@test", pid=1)


# --- a real Celery worker process on Redis ---------------------------------------------


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    log: Path
    queue: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _database_url() -> str:
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
        "DATABASE_URL": _database_url(),
        "REDIS_URL": _redis_url(),
        "XMAILADMIN_CELERY_QUEUE": queue,
        "XMAILADMIN_FERNET_KEY": ",".join(settings.FERNET_KEYS),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "XMAILADMIN_HEARTBEAT_SECONDS": "1",
        "XMAILADMIN_VAR_DIR": str(var),
        **extra,
    }


@contextmanager
def worker_process(queue: str, var: Path) -> Iterator[WorkerProcess]:
    """``celery -A xmailadmin worker`` on Redis for ``queue``, reading and writing the
    test database; stopped (TERM, then KILL) on leaving."""
    log = var / "worker.log"
    env = worker_env(queue, var, XMAILADMIN_LOG_LEVEL="DEBUG")
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
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if _redis_answers(_redis_url()):
            with celery_app.connection_for_write() as conn:
                conn.default_channel.queue_delete(queue)


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup, embedded_broker: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """The session's worker on Redis (see worker_process)."""
    url = _redis_url()
    if not _redis_answers(url):
        pytest.skip(f"Redis does not answer at {url}")
    use_broker(url)
    try:
        with worker_process(SESSION_QUEUE, tmp_path_factory.mktemp("worker-var")) as worker:
            yield worker
    finally:
        use_broker("filesystem://", embedded_broker)


@pytest.fixture
def live_worker(celery_worker_process: WorkerProcess, transactional_db) -> WorkerProcess:
    """The session's worker, with its heartbeat back after the last test's flush."""
    deadline = time.monotonic() + 15
    while not WorkerHeartbeat.objects.filter(seen_at__gte=WorkerHeartbeat.fresh_since()).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("worker heartbeat missing:\n" + celery_worker_process.log_text())
        time.sleep(0.2)
    return celery_worker_process
