"""Fixtures of the panel's tests: users with roles, an account on the test SMTP server,
the Celery broker of the test session, and a real Celery worker process.

The test database is a SQLite *file* (not the in-memory default) so that a
worker process started by a test sees the same rows; with DATABASE_URL
pointing at PostgreSQL the test database there is used instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from panel_workers import (
    SESSION_QUEUE,
    WorkerProcess,
    redis_answers,
    redis_url,
    use_broker,
    worker_process,
)

from xmailadmin.celery import app as celery_app
from xmailadmin.models import ADMIN_GROUP, SUPPORT_GROUP, Account, WorkerHeartbeat

PASSWORD = "s3cr3t-Pässwort;$(echo nope)"  # shell characters on purpose: never reaches a shell


# --- database and broker of the session ----------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


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


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup, embedded_broker: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """The session's worker on Redis (see worker_process)."""
    url = redis_url()
    if not redis_answers(url):
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


@pytest.fixture
def outbox(tmp_path, settings):
    """An empty outbox of its own, where the panel's settings point."""
    from outbox import spool

    folder = tmp_path / "outbox"
    spool.prepare(folder)
    settings.XMAILADMIN_OUTBOX = str(folder)
    return folder


@pytest.fixture
def refusing(smtp):
    """The suite's server, with refused recipients cleared again afterwards."""
    yield smtp
    smtp.refused_recipients.clear()
