"""Sending through every installed mail command in parallel, against the slowest single send.

    .venv/bin/python bench/send_bench.py [--mode starttls|smtps|both] [--repeat N] [--check]

Starts the loopback SMTP test server (tests/support/smtp_server.py, 127.0.0.1 only, TLS + AUTH),
then per mode and repetition sends one message through each installed SMTP-speaking
command alone, one after the other, and then through all of them at once, one thread per
command, as the panel's "test all" does. Every send must pass and every message must
arrive (found by its X-Xmailadmin-Test-Id header); otherwise the failure is printed and
the script exits 1.

The figure is a ratio from the same run: parallel wall time / the slowest command's single
send (medians), goal <= 1.5x. The script reports; only ``--check`` turns a missed goal
into exit status 1. Every send has a hard timeout and the repetitions are bounded, so the
script always ends by itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "tests", ROOT / "tests" / "support"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from pki import make_pki  # noqa: E402
from smtp_server import TEST_ID_HEADER, SmtpTestServer, header_is  # noqa: E402

from bench.common import cpu_seconds, machine_cpu, ms, print_cpu, verdict_line  # noqa: E402
from transports.base import Mode, SendResult, Target, Transport  # noqa: E402
from transports.catalogue import transport_for  # noqa: E402
from transports.message import build_test_message  # noqa: E402

GOAL_PARALLEL = 1.5  # parallel wall time / slowest single send
# The SMTP-speaking commands the brief names, in catalogue order.
COMMANDS = ("python3", "perl", "curl", "msmtp", "openssl", "snail14", "mutt", "mailx-mailutils")
SENDER = "absender@example.org"
RECIPIENT = "empfaenger@example.net"
SEND_TIMEOUT = 20.0  # each command's hard timeout (Target.timeout)
ARRIVAL_TIMEOUT = 10.0  # how long a message that was sent may take to show up


class BenchFailure(Exception):
    """A send that did not pass or a message that did not arrive."""


@dataclass
class Figures:
    """Times in seconds of one mode."""

    single: dict[str, list[float]] = field(default_factory=dict)  # per command, alone
    in_parallel: dict[str, list[float]] = field(default_factory=dict)  # per command, together
    parallel: list[float] = field(default_factory=list)  # wall time of a whole parallel round
    parallel_cpu: list[float] = field(default_factory=list)  # our CPU time in that round
    machine_busy: float = 0.0  # whole machine's busy / total CPU seconds during those rounds
    machine_total: float = 0.0


def make_target(server: SmtpTestServer, mode: Mode) -> Target:
    return Target(
        # Not "127.0.0.1": s-nail 14.9 compares only DNS names with the certificate. Only
        # 127.0.0.1 listens, so a tool trying ::1 first is refused and falls back at once.
        host="localhost",
        port=server.smtps_port if mode is Mode.SMTPS else server.starttls_port,
        mode=mode,
        user=server.user,
        password=server.password,
        sender=SENDER,
        recipient=RECIPIENT,
        ca_file=str(server.ca_file),
        timeout=SEND_TIMEOUT,
    )


def send_one(transport: Transport, target: Target) -> tuple[str, SendResult, float]:
    """Send a fresh test message; (test id, result, wall seconds)."""
    test_id = uuid.uuid4().hex
    message = build_test_message(
        sender=target.sender, recipient=target.recipient, command=transport.key, test_id=test_id
    )
    start = time.perf_counter()
    result = transport.send(target, message)
    return test_id, result, time.perf_counter() - start


def verify(server: SmtpTestServer, sent: dict[str, tuple[str, SendResult, float]], mode: Mode):
    """Every send passed and every message arrived, over the right listener."""
    problems = []
    for key, (test_id, result, _) in sent.items():
        if not result.ok:
            tail = "\n    ".join(result.transcript.strip().splitlines()[-8:])
            problems.append(
                f"{key} ({mode.value}): FAILED at {result.step.value}: {result.reason}\n    {tail}"
            )
            continue
        try:
            got = server.wait_for(header_is(TEST_ID_HEADER, test_id), timeout=ARRIVAL_TIMEOUT)
        except AssertionError as exc:
            problems.append(f"{key} ({mode.value}): sent but did not arrive: {exc}")
            continue
        if got.mode != mode.value or got.auth_user != server.user:
            problems.append(f"{key} ({mode.value}): arrived as {got.mode} for {got.auth_user}")
    if problems:
        raise BenchFailure("\n".join(problems))


def single_round(server, transports, target, mode, figures: Figures | None) -> None:
    for transport in transports:
        sent = {transport.key: send_one(transport, target)}
        verify(server, sent, mode)
        if figures is not None:
            figures.single[transport.key].append(sent[transport.key][2])


def parallel_round(server, transports, target, mode, figures: Figures | None) -> None:
    cpu, (busy, total) = cpu_seconds(), machine_cpu()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(transports), thread_name_prefix="send") as pool:
        futures = {t.key: pool.submit(send_one, t, target) for t in transports}
        sent = {key: future.result() for key, future in futures.items()}
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    busy_after, total_after = machine_cpu()
    verify(server, sent, mode)
    if figures is not None:
        figures.parallel.append(wall)
        figures.parallel_cpu.append(cpu)
        figures.machine_busy += busy_after - busy
        figures.machine_total += total_after - total
        for key, (_, _, seconds) in sent.items():
            figures.in_parallel[key].append(seconds)


def measure(server, transports, mode: Mode, repeat: int) -> Figures:
    target = make_target(server, mode)
    keys = [t.key for t in transports]
    figures = Figures({k: [] for k in keys}, {k: [] for k in keys})
    # One untimed round of each kind: page cache, first TLS session, interpreters warm.
    single_round(server, transports, target, mode, None)
    parallel_round(server, transports, target, mode, None)
    for _ in range(repeat):
        single_round(server, transports, target, mode, figures)
        parallel_round(server, transports, target, mode, figures)
        server.clear()  # bounded memory; every message was checked already
    return figures


def report(mode: Mode, figures: Figures, cpus: int) -> tuple[str, bool]:
    med = {k: statistics.median(v) for k, v in figures.single.items()}
    low = {k: min(v) for k, v in figures.single.items()}
    slowest = max(med, key=lambda k: med[k])
    print(f"-- mode {mode.value}")
    print(f"{'command':<18}{'single median ms':>18}{'min ms':>10}{'in parallel median ms':>23}")
    for key in med:
        mark = "  <- slowest" if key == slowest else ""
        print(
            f"{key:<18}{ms(med[key]):>18}{ms(low[key]):>10}"
            f"{ms(statistics.median(figures.in_parallel[key])):>23}{mark}"
        )
    print(f"{'sum of singles':<18}{ms(sum(med.values())):>18}{ms(sum(low.values())):>10}")
    ratio = statistics.median(figures.parallel) / med[slowest]
    ratio_min = min(figures.parallel) / max(low.values())
    print(
        f"parallel round: median {ms(statistics.median(figures.parallel)).strip()} ms, "
        f"min {ms(min(figures.parallel)).strip()} ms; slowest single ({slowest}): "
        f"median {ms(med[slowest]).strip()} ms (min/min ratio {ratio_min:.2f}x)"
    )
    cpu = sum(figures.parallel_cpu) / len(figures.parallel_cpu)
    share = sum(figures.parallel_cpu) / (sum(figures.parallel) * cpus) * 100
    busy = figures.machine_busy / figures.machine_total * 100 if figures.machine_total else 0
    what = f"parallel round CPU: {cpu * 1000:.0f} ms (commands + this process with the server)"
    print_cpu(what, cpu, share, busy, cpus, med[slowest], "send")
    return verdict_line(f"parallel send / slowest single send ({mode.value})", ratio, GOAL_PARALLEL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["starttls", "smtps", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=5, help="measurements of each (default 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 50:
        parser.error("--repeat must be between 1 and 50")
    modes = [Mode.STARTTLS, Mode.SMTPS] if args.mode == "both" else [Mode(args.mode)]
    cpus = len(os.sched_getaffinity(0))

    transports = [transport_for(key) for key in COMMANDS]
    installed = [t for t in transports if t.which() is not None]
    missing = [t.key for t in transports if t.which() is None]
    print(
        f"send benchmark: {args.repeat} repetitions, modes {', '.join(m.value for m in modes)}, "
        f"{cpus} CPUs"
    )
    print(f"commands: {', '.join(t.key for t in installed) or 'none'}")
    if missing:
        print(f"skipped, not installed: {', '.join(missing)}")
    if not installed:
        print("nothing to measure: none of the commands is installed", file=sys.stderr)
        return 1

    verdicts: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="xmailadmin-send-bench-") as tmp:
        server = SmtpTestServer(make_pki(Path(tmp, "pki")), Path(tmp, "received"))
        with server:
            print(f"loopback server: 127.0.0.1, starttls {server.starttls_port}, "
                  f"smtps {server.smtps_port}")  # fmt: skip
            for mode in modes:
                try:
                    figures = measure(server, installed, mode, args.repeat)
                except BenchFailure as exc:
                    print(f"\nsend failed, no figures for {mode.value}:\n{exc}", file=sys.stderr)
                    return 1
                print()
                verdicts.append(report(mode, figures, cpus))
    print()
    for line, _ in verdicts:
        print(line)
    return 1 if args.check and not all(ok for _, ok in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
