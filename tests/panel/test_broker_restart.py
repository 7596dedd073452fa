"""A Redis restart under a backlog, with a real worker on a private Redis; and the
supervision of scripts/supervise.sh (what scripts/run.sh runs web, worker and beat with).

The private Redis keeps nothing on disk (``--save "" --appendonly no``), like a Redis
started for the panel without persistence: a restart loses every queued job. Before
the workaround in xmailadmin/celery.py the worker died on such a restart ("Unrecoverable
error: AttributeError: 'NoneType' object has no attribute 'hostname'", from kombu's
restore of the unacknowledged messages) whenever it had fetched jobs it had not started
yet while a BRPOP was in flight: the second phase below is that case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone, translation
from kombu.transport.redis import Channel as RedisChannel
from panel_workers import REPO, SESSION_QUEUE, use_broker, worker_process
from private_redis import REDIS_SERVER, PrivateRedis, wait_for

from xmailadmin import health, jobs, services
from xmailadmin.celery import app as celery_app
from xmailadmin.models import ACTIVE_STATES, Account, State, TestSend

CONCURRENCY = 4  # conftest.worker_process starts the worker with 4 processes
LOST_DE = "Der Broker hat den Auftrag verloren"
WORKER_REASON_DE = "Läuft der Worker?"
SEND_TIMEOUT = "4"  # seconds a send to the silent server hangs in the worker


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def on_private_redis(private_redis, embedded_broker, monkeypatch) -> Iterator[str]:
    """This process and any worker started now use the private Redis and a queue of
    their own; returns the queue."""
    queue = f"{SESSION_QUEUE}-restart"
    monkeypatch.setenv("REDIS_URL", private_redis.url)  # read by conftest.worker_process
    monkeypatch.setenv("XMAILADMIN_SEND_TIMEOUT", SEND_TIMEOUT)  # the worker's
    default_queue = celery_app.conf.task_default_queue
    use_broker(private_redis.url)
    celery_app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        celery_app.conf.task_default_queue = default_queue
        use_broker("filesystem://", embedded_broker)


def silent_accounts(port: int, count: int) -> list[Account]:
    accounts = []
    for i in range(count):
        account = Account(
            name=f"Stumm {i}", host="127.0.0.1", port=port, username="u",
            sender="panel@example.org", recipient="admin@example.org",
        )  # fmt: skip
        account.set_password("S3cret-pw")
        account.save()
        accounts.append(account)
    return accounts


def queue_sends(accounts: list[Account], user) -> list[TestSend]:
    """As the panel does: one start_tests per account, two commands each."""
    rows: list[TestSend] = []
    for account in accounts:
        rows += services.start_tests(account, ["python3", "curl"], user)
    return rows


def count(rows: list[TestSend], *states: str) -> int:
    return TestSend.objects.filter(pk__in=[r.pk for r in rows], state__in=states).count()


def all_final(rows: list[TestSend]) -> bool:
    return count(rows, *ACTIVE_STATES) == 0


def assert_lost_rows_say_so(rows: list[TestSend], at_least: int) -> None:
    """Rows that never started end failed because the broker lost them, not because
    of the worker; rows the worker was running end with their own result."""
    lost = 0
    for row in TestSend.objects.filter(pk__in=[r.pk for r in rows]):
        assert row.state not in ACTIVE_STATES, (row.pk, row.state)
        assert WORKER_REASON_DE not in row.explanation, (row.pk, row.explanation)
        if row.started_at is None:
            assert row.state == State.FAILED, (row.pk, row.state)
            assert row.step == "broker", (row.pk, row.step)
            assert row.explanation.startswith(LOST_DE), (row.pk, row.explanation)
            lost += 1
    assert lost >= at_least, f"{lost} rows lost by the broker, expected {at_least} or more"


# --- the worker and a broker restart ---------------------------------------------------------


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_worker_survives_redis_restarts_under_a_backlog_and_lost_rows_say_so(
    on_private_redis, private_redis, silent_server, account, panel_admin, tmp_path
):
    queue = on_private_redis
    accounts = silent_accounts(silent_server.port, 6)
    with worker_process(queue, tmp_path) as worker:
        log = worker.log_text

        # 1. A deep backlog: 12 sends, 4 running (hanging on the silent server), the
        #    rest fetched by the worker or still in the Redis list.
        rows = queue_sends(accounts, panel_admin)
        assert len(rows) == 12
        wait_for(
            lambda: count(rows, State.RUNNING) == CONCURRENCY
            and private_redis.client.llen(queue) > 0,
            "4 sends running and a backlog in the Redis list", 20, log,
        )  # fmt: skip
        private_redis.restart()
        wait_for(lambda: all_final(rows), "every row of the first backlog final", 30, log)
        assert_lost_rows_say_so(rows, at_least=12 - 2 * CONCURRENCY)

        # 2. The case that killed the worker: every process busy, two more jobs fetched
        #    (delivered, not acknowledged) and the Redis list empty, so a BRPOP is in
        #    flight when Redis goes away.
        rows = queue_sends(accounts[:3], panel_admin)
        assert len(rows) == CONCURRENCY + 2
        unacked = RedisChannel.unacked_key  # kombu's hash of delivered, unacknowledged jobs
        wait_for(
            lambda: count(rows, State.RUNNING) == CONCURRENCY
            and private_redis.client.hlen(unacked) == 2
            and private_redis.client.llen(queue) == 0,
            "4 sends running, 2 fetched and waiting", 20, log,
        )  # fmt: skip
        private_redis.restart()
        wait_for(lambda: all_final(rows), "every row of the second backlog final", 30, log)
        assert_lost_rows_say_so(rows, at_least=2)
        assert "Unrecoverable error" not in log(), log()[-4000:]

        # 3. The worker is still there and takes new work from the new Redis.
        assert worker.proc.poll() is None, log()[-4000:]
        (fresh,) = services.start_tests(account, ["python3"], panel_admin)
        wait_for(lambda: all_final([fresh]), "a send queued after the restarts", 60, log)
        fresh.refresh_from_db()
        assert fresh.state in (State.PASSED, State.WARNING), (fresh.reason, log()[-3000:])
        assert fresh.worker.startswith(queue)
        assert worker.proc.poll() is None
        text = log()
        assert "Unrecoverable error" not in text, text[-4000:]
        assert text.count("Connected to redis://") >= 3  # start and two reconnects
        assert "the broker was restarted" in text  # the heartbeat saw the new run_id


@pytest.mark.django_db(transaction=True)
def test_only_rows_older_than_the_redis_and_missing_from_it_count_as_lost(
    on_private_redis, private_redis, offline_account, panel_admin, worker_alive
):
    """No worker: the messages stay in the list, as in a Redis whose queue survived a
    restart (AOF or RDB)."""
    queue = on_private_redis
    rows = services.start_tests(offline_account, ["python3", "curl"], panel_admin)
    assert private_redis.client.llen(queue) == 2
    # Made before this Redis started (a minute ago; well within the time limit).
    before_redis = timezone.now() - timedelta(seconds=60)
    TestSend.objects.update(created_at=before_redis)
    assert jobs.expire_lost_in_broker(cached=False) == 0, "both messages are there"
    time.sleep(health.LOST_CONFIRM_SECONDS + 0.2)
    assert jobs.expire_lost_in_broker(cached=False) == 0, "both still there"

    # One message goes missing: only its row is failed, at the second look a second
    # later (a message in flight is missing for a moment), in the requester's language.
    message = json.loads(private_redis.client.rpop(queue))
    argument, gone = health._job_of(message)
    assert argument == "send_id" and gone in {r.pk for r in rows}
    assert jobs.expire_lost_in_broker(cached=False) == 0, "missing once is not lost"
    wait_for(lambda: jobs.expire_lost_in_broker(cached=False) == 1, "the lost row", 5)
    states = dict(TestSend.objects.values_list("pk", "state"))
    assert states == {r.pk: State.FAILED if r.pk == gone else State.QUEUED for r in rows}
    assert TestSend.objects.get(pk=gone).explanation.startswith(LOST_DE)

    # A row made after this Redis started is not judged: its message went to it.
    # (Redis counts its uptime in whole seconds of its clock: ±1 s, hence 3.)
    wait_for(lambda: private_redis.client.info("server")["uptime_in_seconds"] >= 3, "3 s", 5)
    young = TestSend.objects.create(
        account=offline_account, account_name=offline_account.name, command="perl",
        recipient=offline_account.recipient, language="en",
    )  # fmt: skip
    for _ in range(3):
        assert jobs.expire_lost_in_broker(cached=False) == 0
        time.sleep(health.LOST_CONFIRM_SECONDS / 2)
    # The same row made before this Redis: failed by the page's expire_stale, the reason
    # kept as data, so each reader sees it in their language.
    TestSend.objects.filter(pk=young.pk).update(created_at=before_redis)
    wait_for(
        lambda: jobs.expire_stale() and TestSend.objects.get(pk=young.pk).state == State.FAILED,
        "the row made before the Redis failed", 5,
    )  # fmt: skip
    young.refresh_from_db()
    assert young.reason_code == "broker_lost", young.reason_code
    assert young.explanation.startswith(LOST_DE), young.explanation
    with translation.override("en"):
        assert young.explanation.startswith("The broker lost the job"), young.explanation
    assert TestSend.objects.filter(state=State.QUEUED).count() == 1, "the one in the list"


# --- supervision (scripts/supervise.sh, used by scripts/run.sh) --------------------------------

SUPERVISE = REPO / "scripts" / "supervise.sh"


def dummy(folder: Path, name: str, script: str = "exec sleep 300") -> list[str]:
    """A child that writes its pid to NAME.pids on every start."""
    return [name, "sh", "-c", f"echo $$ >> {folder / name}.pids; {script}"]


def pids(folder: Path, name: str) -> list[int]:
    path = folder / f"{name}.pids"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def supervise(folder: Path, children: list[list[str]], **env: str) -> subprocess.Popen:
    args = [str(SUPERVISE)]
    for i, child in enumerate(children):
        args += (["--"] if i else []) + child
    return subprocess.Popen(
        args,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=(folder / "stderr").open("wb"),
        start_new_session=True,
    )


def stop(proc: subprocess.Popen, sig: int) -> int:
    try:
        proc.send_signal(sig)
        return proc.wait(15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_supervise_restarts_a_killed_worker_and_leaves_web_and_beat_alone(tmp_path):
    proc = supervise(tmp_path, [dummy(tmp_path, n) for n in ("web", "worker", "beat")])
    try:
        names = ("web", "worker", "beat")
        wait_for(lambda: all(len(pids(tmp_path, n)) == 1 for n in names), "all started", 10)
        (web,), (worker,), (beat,) = (pids(tmp_path, n) for n in ("web", "worker", "beat"))

        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: len(pids(tmp_path, "worker")) == 2, "the worker started again", 10)
        stderr = (tmp_path / "stderr").read_text()
        assert "== xmailadmin: worker ended (exit 137), restarting" in stderr
        new_worker = pids(tmp_path, "worker")[1]
        assert new_worker != worker and alive(new_worker)
        assert pids(tmp_path, "web") == [web] and alive(web), "web untouched"
        assert pids(tmp_path, "beat") == [beat] and alive(beat), "beat untouched"
    finally:
        status = stop(proc, signal.SIGTERM)
    assert status == 143
    assert not any(alive(p) for p in (web, new_worker, beat)), "TERM stops all three"
    assert "== xmailadmin: stopping web worker beat" in (tmp_path / "stderr").read_text()


def test_supervise_restarts_a_crashing_child_at_most_n_times_a_window(tmp_path):
    children = [
        dummy(tmp_path, "web"),
        dummy(tmp_path, "worker", "exit 3"),  # ends at once, every time
        dummy(tmp_path, "beat"),
    ]
    proc = supervise(
        tmp_path, children,
        SUPERVISE_MAX_RESTARTS="3", SUPERVISE_WINDOW="60", SUPERVISE_BACKOFF_MAX="0",
    )  # fmt: skip
    try:
        wait_for(lambda: len(pids(tmp_path, "worker")) == 4, "one start and 3 restarts", 10)
        time.sleep(1.5)  # a fifth start would come now without the limit
        assert len(pids(tmp_path, "worker")) == 4
        stderr = (tmp_path / "stderr").read_text()
        assert stderr.count("== xmailadmin: worker ended (exit 3), restarting") == 4
        assert "(3 restarts in the last 60 s)" in stderr
        (web,) = pids(tmp_path, "web")
        assert alive(web)
    finally:
        status = stop(proc, signal.SIGINT)  # Ctrl-C
    assert status == 130
    assert not alive(web)
