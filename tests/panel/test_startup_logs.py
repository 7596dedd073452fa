"""What the processes of the start path (run.sh: gunicorn, a Celery worker and beat on the
embedded broker) write at startup: no kombu "No hostname was supplied" noise, and every
timestamp in the panel's TIME_ZONE with its offset shown."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from panel_workers import REPO, stop_worker, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

# A zone no test machine runs in, so a line in the machine's zone shows.
ZONE = "Asia/Kolkata"
GUNICORN_FLAGS = ["--logger-class", "xmailadmin.logtime.GunicornLogger", "--access-logfile", "-"]
# A log line's own timestamp, at its start or after the client in an access log line:
# "2026-12-02 06:44:30.230+05:30" (Django, Celery), "[2026-12-02 06:44:30 +0530]" (gunicorn)
# and "127.0.0.1 - - [02/Dec/2026:06:44:30 +0530]". Celery's banner is no log line.
STAMP = re.compile(
    r"^(?:\[|\S+ - \S+ \[)?(?:\d{4}-\d\d-\d\d |\d\d/\w{3}/\d{4}:)\d\d:\d\d:\d\d(?:[.,]\d+)?"
    r"(?P<offset> ?(?:[+-]\d\d:?\d\d|Z))?",
    re.MULTILINE,
)


def expected_offset() -> str:
    return datetime.now(ZoneInfo(ZONE)).strftime("%z")


def start(argv: list[str], log: Path, var: Path) -> subprocess.Popen:
    # The embedded broker, as run.sh without REDIS_URL.
    env = worker_env("xmailadmin-startup-test", var, XMAILADMIN_TIME_ZONE=ZONE)
    env.pop("REDIS_URL")
    env["DJANGO_SETTINGS_MODULE"] = "xmailadmin.settings"
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for(log: Path, proc: subprocess.Popen, pattern: str, timeout: float = 40) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := re.search(pattern, log.read_text(errors="replace")):
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} in:\n{log.read_text(errors='replace')[-3000:]}")


def assert_clean(text: str) -> None:
    assert "No hostname was supplied" not in text
    stamps = list(STAMP.finditer(text))
    assert len(stamps) >= 2, text
    offsets = {(m.group("offset") or "none").strip().replace(":", "") for m in stamps}
    assert offsets == {expected_offset()}, [m.group(0) for m in stamps]


def test_gunicorn_logs_in_the_panels_zone_from_its_first_line(tmp_path):
    log = tmp_path / "web.log"
    argv = [sys.executable, "-m", "gunicorn", "xmailadmin.wsgi", "--bind", "127.0.0.1:0"]
    proc = start([*argv, "--workers", "1", *GUNICORN_FLAGS], log, tmp_path)
    try:
        port = wait_for(log, proc, r"Listening at: http://127\.0\.0\.1:(\d+)").group(1)
        wait_for(log, proc, r"Booting worker")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=20) as answer:
            assert answer.status == 200
        wait_for(log, proc, r'"GET /login/')
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert_clean(log.read_text())


@pytest.mark.parametrize(
    ("argv", "ready"),
    [
        (
            [
                "worker",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                "--concurrency",
                "1",
            ],
            r" ready\.",
        ),
        (["beat", "--loglevel", "INFO"], r"beat: Starting"),
    ],  # fmt: skip
    ids=["worker", "beat"],
)
def test_celery_starts_without_noise_in_the_panels_zone(argv, ready, tmp_path):
    log = tmp_path / "celery.log"
    extra = ["--schedule", str(tmp_path / "schedule")] if argv[0] == "beat" else []
    proc = start([sys.executable, "-m", "celery", "-A", "xmailadmin", *argv, *extra], log, tmp_path)
    try:
        wait_for(log, proc, ready)
        time.sleep(1)  # what follows "ready" (the first broker polls) is part of the start
    finally:
        stop_worker(proc)
    assert_clean(log.read_text())


@pytest.mark.parametrize("path", ["scripts/run.sh", "deploy/systemd/xmailadmin-web.service"])
def test_every_start_path_gives_gunicorn_the_zoned_logger(path):
    assert "--logger-class xmailadmin.logtime.GunicornLogger" in (REPO / path).read_text()
