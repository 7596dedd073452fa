"""A worker killed with SIGKILL mid-send leaves no mail command running and no password
on disk: a real Celery worker, six real mail commands hanging on a silent server.

How the worker dies, in three ways a real kill happens:

- ``worker``: every process of the Celery worker at once (``kill -9 -PGID``, the OOM
  killer or a crash taking the main process and its pool). The tools run in sessions
  of their own, so only their tie to the worker (PR_SET_PDEATHSIG, and the guardian
  of ``transports.run``, which sits in a session of its own too) can end them.
- ``pool``: only the pool processes that run the sends (the OOM killer picks the
  biggest, Celery's hard time limit kills one); the main process starts new ones.
- ``everything``: the whole service at once, guardians included (systemd's final
  SIGKILL to the cgroup): the tools die with it, but nobody is left to remove the
  folders, so the next worker start must (``xmailadmin/worker_start.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from panel_workers import (
    REPO,
    SESSION_QUEUE,
    WorkerProcess,
    redis_answers,
    redis_url,
    stop_worker,
    worker_env,
)

from transports.secrecy import secret_forms
from xmailadmin import jobs, services
from xmailadmin.celery import app as celery_app
from xmailadmin.models import ACTIVE_STATES, Account, State, TestSend

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

# The command keys and the programs they run; send_mail.py is python3's.
TOOLS = {
    "mutt": "mutt",
    "msmtp": "msmtp",
    "openssl": "openssl",
    "snail14": "s-nail",
    "curl": "curl",
    "python3": "send_mail.py",
}
DEADLINE = 20.0  # seconds for everything to be gone after the kill
# Why the rows failed, as the page says it: the worker stopped, never "timeout". The
# whole worker gone: its heartbeats stop (or its successor, same name, says so first);
# only the pool: the worker's main process hears it from Celery at once.
REASONS = {
    "kill_worker": {"worker_stopped"},
    "kill_pool": {"process_lost"},
    "kill_everything": {"worker_restarted", "worker_stopped"},
}


# --- processes, from /proc ---------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    start: int  # with the pid: this process, not a later one with the same pid
    argv: tuple[str, ...]
    environ: bytes

    @property
    def name(self) -> str:
        if len(self.argv) > 1 and self.argv[1].endswith("send_mail.py"):
            return "send_mail.py"
        if self.argv[1:4] == ("-I", "-S", "-c"):
            return "guardian"
        if "celery" in self.argv[1:3] or any(a.endswith("/celery") for a in self.argv[1:2]):
            return "celery"
        return os.path.basename(self.argv[0]) if self.argv else ""


def processes() -> dict[int, Proc]:
    """Every live process; zombies count as gone (their init reaps them)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path("/proc", entry, "stat").read_bytes().rsplit(b")", 1)[1].split()
            if fields[0] in (b"Z", b"X"):
                continue
            argv = Path("/proc", entry, "cmdline").read_bytes().split(b"\0")
            environ = Path("/proc", entry, "environ").read_bytes()
        except (OSError, IndexError):
            continue
        words = tuple(a.decode(errors="replace") for a in argv if a)
        found[int(entry)] = Proc(int(entry), int(fields[1]), int(fields[19]), words, environ)
    return found


def descendants(root: int, table: dict[int, Proc]) -> list[Proc]:
    out, frontier = [], {root}
    while frontier:
        kids = [p for p in table.values() if p.ppid in frontier]
        out += kids
        frontier = {p.pid for p in kids}
    return out


def works_in(proc: Proc, runtime: Path) -> bool:
    """Its argv names a file in ``runtime``, or its HOME or MAILRC is there: every tool
    but openssl, and any helper one of them forked later."""
    places = [v for v in proc.environ.split(b"\0") if v.startswith((b"HOME=", b"MAILRC="))]
    return any(str(runtime) in a for a in proc.argv) or any(
        str(runtime).encode() in v for v in places
    )


def still_running(snapshot: list[Proc], runtime: Path) -> list[Proc]:
    """What is left of ``snapshot``, and any other process that works in ``runtime``."""
    table = processes()
    left = [p for p in snapshot if p.pid in table and table[p.pid].start == p.start]
    return left + [p for p in table.values() if p not in left and works_in(p, runtime)]


# --- files with the password ---------------------------------------------------------------


def files_under(base: Path) -> list[Path]:
    return [Path(d, f) for d, _, files in os.walk(base) for f in files]


def holding(paths: list[Path], secrets: list[bytes]) -> list[Path]:
    found = []
    for path in paths:
        with suppress(OSError):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 1 << 20:
                data = path.read_bytes()
                if any(s in data for s in secrets):
                    found.append(path)
    return found


def default_places(since: float) -> list[Path]:
    """Files written since the test started where private folders went before, or go
    by default: the system temp folder and /dev/shm (both searched whole)."""
    paths = []
    for base in {tempfile.gettempdir(), "/dev/shm"}:
        for folder, _, files in os.walk(base):
            for name in files:
                path = Path(folder, name)
                with suppress(OSError):
                    if path.lstat().st_mtime >= since:
                        paths.append(path)
    return paths


# --- a worker of its own --------------------------------------------------------------------


@contextmanager
def worker(queue: str, var: Path, runtime: Path) -> Iterator[WorkerProcess]:
    """``celery -A xmailadmin worker`` on Redis for ``queue`` with room for all six sends
    at once and a send timeout far beyond the test; the private folders in ``runtime``."""
    var.mkdir(parents=True, exist_ok=True)
    log = var / "worker.log"
    env = worker_env(
        queue, var,
        XMAILADMIN_RUNTIME_DIR=str(runtime),
        XMAILADMIN_SEND_TIMEOUT="90",
        CELERY_TASK_TIME_LIMIT="120",
    )  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "xmailadmin", "worker",
                "--loglevel", "INFO", "--concurrency", str(len(TOOLS) + 2), "--pool", "prefork",
                "--hostname", f"{queue}@%h", "--without-mingle", "--without-gossip",
            ],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    started = WorkerProcess(proc, log, queue)
    try:
        wait_until(lambda: " ready." in started.log_text(), started, 30, proc.poll)
        yield started
    finally:
        stop_worker(proc)


def wait_until(
    condition: Callable[[], object],
    worker: WorkerProcess,
    timeout: float = 30,
    dead: Callable[[], object] | None = None,
    what: str = "condition not met",
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or (dead is not None and dead() is not None):
            raise AssertionError(f"{what}:\n" + worker.log_text()[-3000:])
        time.sleep(0.1)


@pytest.fixture
def tools() -> dict[str, str]:
    programs = [p if p != "send_mail.py" else "python3" for p in TOOLS.values()]
    if missing := [p for p in programs if not shutil.which(p)]:
        pytest.skip(f"not installed: {', '.join(missing)}")
    return TOOLS


# --- the test -------------------------------------------------------------------------------


def kill_worker(root: int, snapshot: list[Proc]) -> None:
    os.killpg(root, signal.SIGKILL)


def kill_pool(root: int, snapshot: list[Proc]) -> None:
    for proc in snapshot:
        if proc.ppid == root and proc.name == "celery":
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def kill_everything(root: int, snapshot: list[Proc]) -> None:
    # The guardians first: killed after the worker, they would clean up in between.
    for proc in snapshot:
        if proc.name == "guardian":
            os.kill(proc.pid, signal.SIGKILL)
    os.killpg(root, signal.SIGKILL)
    for proc in snapshot:
        with suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)


def assert_failed_as_a_stopped_worker(sends, reasons: set[str], doomed) -> None:
    """Every row final, at the step "worker" with the reason of how it died."""

    def all_final() -> bool:
        jobs.expire_stale()  # what the page's next poll does
        return not TestSend.objects.filter(state__in=ACTIVE_STATES).exists()

    wait_until(all_final, doomed, DEADLINE, what="rows still active after the kill")
    for send in TestSend.objects.filter(pk__in=[s.pk for s in sends]):
        assert (send.state, send.step) == (State.FAILED, "worker"), (send.step, send.reason)
        assert send.reason_code in reasons, send.reason
        assert send.reason_text["msgid"] and "time limit" not in send.explanation


@pytest.mark.parametrize(
    "kill", [kill_worker, kill_pool, kill_everything], ids=["worker", "pool", "everything"]
)
def test_a_sigkilled_worker_leaves_no_tool_running_and_no_password_on_disk(
    kill, tools, celery_worker_process, silent_server, tmp_path, panel_admin, settings
):
    # celery_worker_process: only for its switch of this process's broker to Redis.
    settings.XMAILADMIN_HEARTBEAT_SECONDS = 1  # as the workers beat: stale after 3 s
    since = time.time() - 1
    password = f"Kill-S3cret-{uuid.uuid4().hex[:12]}"
    secrets = [f.encode() for f in secret_forms("u", password)]
    account = Account(
        name="Stumm", host="127.0.0.1", port=silent_server.port, username="u",
        sender="panel@example.org", recipient="admin@example.org", is_default=True,
    )  # fmt: skip
    account.set_password(password)
    account.save()
    queue = f"{SESSION_QUEUE}-kill-{kill.__name__}"
    runtime = tmp_path / "runtime"
    default_queue = celery_app.conf.task_default_queue
    snapshot: list[Proc] = []
    secret_files: list[Path] = []
    try:
        with worker(queue, tmp_path / "var", runtime) as doomed:
            celery_app.conf.task_default_queue = queue
            try:
                sends = services.start_tests(account, list(tools), panel_admin)
            finally:
                celery_app.conf.task_default_queue = default_queue
            assert len(sends) == len(tools)

            # All six hang on the silent server: rows running, tools connected.
            def all_hanging() -> bool:
                running = TestSend.objects.filter(state=State.RUNNING).count() == len(tools)
                names = {p.name for p in descendants(doomed.proc.pid, processes())}
                return running and set(tools.values()) <= names and silent_server.accepted >= 6

            wait_until(all_hanging, doomed, 60, doomed.proc.poll, "the sends did not all hang")
            snapshot = descendants(doomed.proc.pid, processes())
            # mutt's muttrc, msmtp's password file, s-nail's MAILRC: on disk, for now.
            secret_files = holding(sorted({*files_under(runtime), *default_places(since)}), secrets)
            assert len(secret_files) == 3, secret_files

            kill(doomed.proc.pid, snapshot)

            tools_and_guardians = [p for p in snapshot if p.name != "celery"]
            deadline = time.monotonic() + DEADLINE
            while still_running(tools_and_guardians, runtime) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = still_running(tools_and_guardians, runtime)
            assert not left, "still running after the kill:\n" + "\n".join(
                f"{p.pid} {p.name}: {' '.join(p.argv)[:150]}" for p in left
            )

            if kill is kill_everything:
                # Nobody was left to remove the folders; the next worker does.
                doomed.proc.wait()
                assert holding(secret_files, secrets) == secret_files
                with worker(queue, tmp_path / "var-next", runtime) as successor:
                    assert "private folder(s) left by a killed worker" in successor.log_text()
            else:
                while holding(secret_files, secrets) and time.monotonic() < deadline:
                    time.sleep(0.1)

            # Not a file left in the runtime folder, and the password nowhere else.
            assert holding(default_places(since), secrets) == []
            assert files_under(runtime) == []
            assert list(runtime.iterdir()) == []

            assert_failed_as_a_stopped_worker(sends, REASONS[kill.__name__], doomed)
    finally:
        # Whatever the test found: nothing it started stays, no password stays.
        table = processes()
        for proc in snapshot:
            if proc.pid in table and table[proc.pid].start == proc.start:
                os.kill(proc.pid, signal.SIGKILL)
        homes = [v[5:] for p in snapshot for v in p.environ.split(b"\0") if v[:5] == b"HOME="]
        for folder in [*(p.parent for p in secret_files), *map(Path, map(os.fsdecode, homes))]:
            if folder.name.startswith("xmailadmin-") or folder.parent == runtime:
                shutil.rmtree(folder, ignore_errors=True)
        if redis_answers(redis_url()):
            with celery_app.connection_for_write() as conn:
                conn.default_channel.queue_delete(queue)
