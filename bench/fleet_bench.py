"""Fleet benchmark (issue 10): probes and test mails on N servers at once against one.

    .venv/bin/python bench/fleet_bench.py [--servers 1,2,4,8] [--rounds 3]
        [--commands python3,curl,msmtp,perl] [--database-url URL] [--redis URL]

Starts, on loopback only: the SMTP test server (tests/support/smtp_server.py) and eight
Celery workers on Redis, each a simulated server of its own (XMAILADMIN_SERVER_NAME
sim1..sim8, its own queue, 4 processes), all on a throw-away var/ folder and database
(SQLite there unless --database-url names another). For each N it starts, at the same
moment, a probe on each of N servers and waits until every row is final; then a test
mail through each of the commands on each of the N servers, likewise. It prints, per N,
the median time to all rows final, its ratio to N = 1 (goal: flat within 1.5x up to the
CPU limit), how busy the machine's CPUs were and what one server's work cost in CPU
seconds (flat when more servers add no overhead), and says at which N the CPUs were the
limit (busy >= 90 %).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "support"))

from bench.common import bench_account, machine_cpu  # noqa: E402

WORKERS = 8
LIMIT_BUSY = 90.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", default="1,2,4,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--commands", default="python3,curl,msmtp,perl")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    counts = [int(n) for n in args.servers.split(",")]
    if max(counts) > WORKERS:
        raise SystemExit(f"at most {WORKERS} servers")
    keys = args.commands.split(",")

    work = Path(tempfile.mkdtemp(prefix="xmailadmin-fleet-"))
    tag = uuid.uuid4().hex[:6]
    os.environ.update(
        XMAILADMIN_VAR_DIR=str(work / "var"),
        REDIS_URL=args.redis,
        DATABASE_URL=args.database_url or f"sqlite:///{work / 'db.sqlite3'}",
        XMAILADMIN_PROBE_INTERVAL="0",
        XMAILADMIN_HEALTH_INTERVAL="0",
        XMAILADMIN_TEST_MAILS_PER_MINUTE="100000",
        XMAILADMIN_CELERY_QUEUE=f"fleet-bench-panel-{tag}",
        XMAILADMIN_SERVER_NAME=f"fleet-bench-panel-{tag}",
        DJANGO_SETTINGS_MODULE="xmailadmin.settings",
    )
    import pki
    import smtp_server

    smtp = smtp_server.SmtpTestServer(pki.make_pki(work / "pki"), work / "mail").start()
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=REPO, check=True)

    import logging

    import django

    django.setup()
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    from xmailadmin import services
    from xmailadmin.models import ACTIVE_STATES, ProbeRun, Server, TestSend

    account = bench_account(smtp)

    logs = work / "logs"
    logs.mkdir()
    names = [f"sim{i}-{tag}" for i in range(1, WORKERS + 1)]
    procs = [
        subprocess.Popen(
            [py, "-m", "celery", "-A", "xmailadmin", "worker", "--concurrency", "4",
             "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip",
             "--loglevel", "WARNING"],
            cwd=REPO, env={**os.environ, "XMAILADMIN_SERVER_NAME": name,
                           "XMAILADMIN_CELERY_QUEUE": f"fleet-{name}"},
            stdout=(logs / f"{name}.log").open("wb"), stderr=subprocess.STDOUT,
        )
        for name in names
    ]  # fmt: skip
    results: dict[int, dict[str, list[tuple[float, float]]]] = {}
    try:
        wait(lambda: Server.objects.filter(name__in=names, last_seen__isnull=False).count()
             == WORKERS, 120, "all workers")  # fmt: skip
        servers = [Server.objects.get(name=n) for n in names]

        def all_final(model, rows) -> None:
            ids = [r.pk for r in rows]
            wait(lambda: not model.objects.filter(pk__in=ids, state__in=ACTIVE_STATES).exists(),
                 300, model.__name__)  # fmt: skip

        def timed(start) -> tuple[float, float]:
            busy0, total0 = machine_cpu()
            began = time.monotonic()
            model, rows = start()
            all_final(model, rows)
            took = time.monotonic() - began
            busy1, total1 = machine_cpu()
            return took, 100 * (busy1 - busy0) / max(total1 - total0, 1e-9)

        def probes(n: int):
            return ProbeRun, [services.start_probe(None, server=s) for s in servers[:n]]

        def sends(n: int):
            rows = [services.start_tests(account, keys, None, server=s) for s in servers[:n]]
            return TestSend, [row for each in rows for row in each]

        timed(lambda: probes(WORKERS))  # warm-up: every worker has run a probe and a send
        timed(lambda: sends(WORKERS))
        for n in counts:
            results[n] = {"probe": [], "send": []}
            for _ in range(args.rounds):
                results[n]["probe"].append(timed(lambda n=n: probes(n)))
                results[n]["send"].append(timed(lambda n=n: sends(n)))
        failed = TestSend.objects.exclude(state__in=("passed", "warning")).count()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
        smtp.stop()
    report(results, keys, failed, os.cpu_count() or 1)


def report(results, keys: list[str], failed: int, cpus: int) -> None:
    print(f"{cpus} CPUs; test mails through {', '.join(keys)} on each server; "
          f"{failed} test(s) not passed")  # fmt: skip
    for what in ("probe", "send"):
        base = statistics.median(t for t, _busy in results[min(results)][what])
        print(f"\n{what}: time to all rows final (median), against N = {min(results)}")
        limit = None
        for n, by_kind in results.items():
            runs = by_kind[what]
            took = statistics.median(t for t, _busy in runs)
            busy = statistics.median(b for _t, b in runs)
            ratio = took / base
            flag = "" if ratio <= 1.5 else "  (over 1.5x)"
            # What each server's work cost the machine: flat when N servers add no overhead.
            per_server = took * busy / 100 * cpus / n
            print(f"  N = {n}: {took * 1000:8.0f} ms  {ratio:5.2f}x  CPUs {busy:3.0f}% busy  "
                  f"{per_server:5.2f} CPU-s per server{flag}")  # fmt: skip
            if limit is None and busy >= LIMIT_BUSY:
                limit = n
        if limit is None:
            print(f"  the CPUs stayed below {LIMIT_BUSY:.0f}% busy: no CPU limit reached")
        else:
            print(f"  CPU limit: from N = {limit} the {cpus} CPUs were >= {LIMIT_BUSY:.0f}% "
                  "busy; beyond that the time grows with N")  # fmt: skip


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
