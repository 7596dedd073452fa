"""How long the detection of every mail command takes, as ratios measured in one run.

    .venv/bin/python bench/probe_bench.py [--repeat N] [--check]

Three things are timed, each N times (median and min), with cold caches (the library
version cache is emptied before every measurement; ``probe_all`` and ``detect`` make a new
subprocess cache per call themselves):

1. every ``detect(key)`` alone, one key after the other;
2. ``probe_all()``, all keys in parallel;
3. the vendor's manual way: for each of the 14 catalogue rows, ``which CMD``,
   ``CMD --version`` (or that tool's version flag) and ``ldd $(which CMD) | grep ssl``,
   typed one after the other into /bin/sh. This baseline is the only place a shell is
   used; the product itself never runs one.

The figures are ratios against baselines from the same run, never absolute times: the
goal is ``probe_all`` <= 1.3 x the slowest single ``detect``. The script reports; only
``--check`` turns a missed goal into exit status 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds, machine_cpu, ms, print_cpu, verdict_line  # noqa: E402
from transports import probe, run, tlsinfo  # noqa: E402
from transports.catalogue import KEYS  # noqa: E402

R = TypeVar("R")
GOAL_SINGLE = 1.3  # probe_all / slowest single detect
SHELL_TIMEOUT = 10.0

# The vendor's manual check, one row per catalogue key: (key, command, version command).
# The version command is what that tool answers to; bsd-mailx has none, its package says it.
VENDOR_ROWS: tuple[tuple[str, str, str], ...] = (
    ("python", "python", "python --version"),
    ("python3", "python3", "python3 --version"),
    ("perl", "perl", "perl --version"),
    ("curl", "curl", "curl --version"),
    ("msmtp", "msmtp", "msmtp --version"),
    ("postfix", "sendmail", "postconf -d mail_version"),
    ("openssl", "openssl", "openssl version"),
    ("exim", "exim4", "exim4 -bV"),
    ("snail14", "s-nail", "s-nail -V"),
    ("snail15", "s-nail", "s-nail -V"),
    ("mutt", "mutt", "mutt -v"),
    ("mailx-heirloom", "heirloom-mailx", "heirloom-mailx -V"),
    ("mailx-bsd", "bsd-mailx", "dpkg-query -W bsd-mailx"),
    ("mailx-mailutils", "mail.mailutils", "mail.mailutils --version"),
)
assert tuple(row[0] for row in VENDOR_ROWS) == KEYS, "one vendor row per catalogue key"


def reset_caches() -> None:
    """Forget what an earlier detection learnt (the library versions, per file)."""
    for module in (tlsinfo, probe):
        clear = getattr(module, "clear_version_cache", None)
        if clear is not None:
            clear()
            return
    raise SystemExit("no cache reset found: transports.tlsinfo.clear_version_cache is gone")


class Load:
    """Wall time, our CPU time and the machine's busy time, summed over measurements."""

    def __init__(self) -> None:
        self.wall = self.ours = self.busy = self.total = 0.0

    def add(self, wall: float, before: tuple[float, float, float], after: tuple[float, ...]):
        self.wall += wall
        self.ours += after[0] - before[0]
        self.busy += after[1] - before[1]
        self.total += after[2] - before[2]


def snapshot() -> tuple[float, float, float]:
    return (cpu_seconds(), *machine_cpu())


def timed(fn: Callable[[], R], load: Load | None = None) -> tuple[float, R]:
    reset_caches()
    before = snapshot()
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    if load is not None:
        load.add(seconds, before, snapshot())
    return seconds, value


def shell_env() -> dict[str, str]:
    """An administrator's root shell: PATH with the sbin directories, English output."""
    env = dict(os.environ)
    dirs = env.get("PATH", os.defpath).split(os.pathsep)
    dirs += [d for d in run.SBIN_DIRS if d not in dirs]
    env["PATH"] = os.pathsep.join(dirs)
    env["LC_ALL"] = "C"
    return env


def vendor_loop(env: dict[str, str]) -> float:
    """The manual way, sequential: three command lines per catalogue row."""
    start = time.perf_counter()
    for _key, command, version in VENDOR_ROWS:
        for line in (f"which {command}", version, f"ldd $(which {command}) | grep ssl"):
            try:
                subprocess.run(
                    ["/bin/sh", "-c", line],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    env=env,
                    timeout=SHELL_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                print(f"warning: `{line}` took over {SHELL_TIMEOUT:g} s", file=sys.stderr)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="measurements of each (default 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 100:
        parser.error("--repeat must be between 1 and 100")

    env = shell_env()
    cpus = len(os.sched_getaffinity(0))
    # One untimed round: imports, the page cache and pyenv's shims are warm for everyone.
    for key in KEYS:
        timed(lambda key=key: probe.detect(key))
    timed(probe.probe_all)
    vendor_loop(env)

    single: dict[str, list[float]] = {key: [] for key in KEYS}
    inside: dict[str, list[float]] = {key: [] for key in KEYS}  # duration_s within probe_all
    found: dict[str, bool] = {}
    whole: list[float] = []
    vendor: list[float] = []
    load = Load()  # during the probe_all() runs
    for _ in range(args.repeat):
        for key in KEYS:
            seconds, det = timed(lambda key=key: probe.detect(key))
            single[key].append(seconds)
            found[key] = det.found
        seconds, rows = timed(probe.probe_all, load)
        whole.append(seconds)
        for row in rows:
            inside[row.key].append(row.duration_s)
        vendor.append(vendor_loop(env))

    med = {key: statistics.median(times) for key, times in single.items()}
    low = {key: min(times) for key, times in single.items()}
    slowest = max(KEYS, key=lambda k: med[k])
    slowest_min = max(low.values())

    print(f"probe benchmark: {args.repeat} repetitions, cold caches, {cpus} CPUs")
    print()
    print(f"{'detect(key)':<18}{'found':>6}{'median ms':>11}{'min ms':>10}{'in probe_all ms':>17}")
    for key in KEYS:
        mark = "  <- slowest" if key == slowest else ""
        print(
            f"{key:<18}{'yes' if found[key] else 'no':>6}{ms(med[key]):>11}{ms(low[key]):>10}"
            f"{ms(statistics.median(inside[key])):>17}{mark}"
        )
    print(f"{'sum of singles':<24}{ms(sum(med.values())):>11}{ms(sum(low.values())):>10}")
    print()
    print(f"{'measurement':<34}{'median ms':>11}{'min ms':>10}")
    for name, median, minimum in (
        ("probe_all() (parallel)", statistics.median(whole), min(whole)),
        (f"slowest single detect ({slowest})", med[slowest], slowest_min),
        ("vendor's manual loop (sh)", statistics.median(vendor), min(vendor)),
    ):
        print(f"{name:<34}{ms(median):>11}{ms(minimum):>10}")
    print()

    # CPU: the probe runs ~40 short processes; on few CPUs it cannot end before their sum does.
    ours = load.ours / args.repeat
    share = load.ours / (load.wall * cpus) * 100
    busy = load.busy / load.total * 100 if load.total else float("nan")
    what = f"probe_all CPU: {ours * 1000:.0f} ms per run (this process and its children)"
    print_cpu(what, ours, share, busy, cpus, med[slowest], "probe")
    print()

    ratio = statistics.median(whole) / med[slowest]
    ratio_min = min(whole) / slowest_min
    vendor_ratio = statistics.median(whole) / statistics.median(vendor)
    print(f"(min/min: probe_all / slowest single probe {ratio_min:.2f}x)")
    line, ok = verdict_line("probe_all / slowest single probe", ratio, GOAL_SINGLE)
    print(line)
    faster = "faster" if vendor_ratio < 1 else "slower"
    print(
        f"probe_all / vendor's manual loop: {vendor_ratio:.2f}x "
        f"(reported, no goal: probe_all is {faster} than the manual way)"
    )
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
