"""What the benchmarks share: CPU times, milliseconds as printed, the verdict line."""

from __future__ import annotations

import os
import resource


def cpu_seconds() -> float:
    """CPU time (user + system) of this process (with whatever runs in it, such as the send
    benchmark's SMTP server) and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    idle = sum(ticks[3:5])  # idle, iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def print_cpu(
    what: str, cpu: float, share: float, busy: float, cpus: int, slowest: float, single: str
) -> None:
    """Two lines: ``what`` took ``share`` % of the CPUs while the machine was ``busy`` %;
    and the floor that ``cpu`` seconds spread over all CPUs set, against the ``slowest``
    ``single`` measurement."""
    print(
        f"{what} = {share:.0f}% of {cpus} CPUs; whole machine {busy:.0f}% busy meanwhile "
        f"(other processes ~{max(0.0, busy - share):.0f}%)"
    )
    floor = cpu / cpus
    print(
        f"CPU floor: {cpu * 1000:.0f} ms / {cpus} CPUs = {floor * 1000:.0f} ms = "
        f"{floor / slowest:.2f}x the slowest single {single}"
    )


def verdict_line(name: str, ratio: float, goal: float) -> tuple[str, bool]:
    ok = ratio <= goal
    return f"{name}: {ratio:.2f}x (goal <= {goal:g}x) {'OK' if ok else 'MISSED'}", ok


def bench_account(smtp):
    """The default account on the STARTTLS port of the loopback test server ``smtp``
    (Django set up already)."""
    from xmailadmin.models import Account

    account = Account(
        name="Bench", host=smtp.host, port=smtp.starttls_port, username=smtp.user,
        sender="bench@example.org", recipient="admin@example.org", ca_file=str(smtp.ca_file),
        is_default=True,
    )  # fmt: skip
    account.set_password(smtp.password)
    account.save()
    return account
