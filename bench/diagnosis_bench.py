"""The server check against one TLS handshake to the same server, both measured in this run.

    .venv/bin/python bench/diagnosis_bench.py [--runs N] [--rtt-ms MS] [--check]

Starts the loopback SMTP test server (tests/support/smtp_server.py, standalone, in a
process of its own so that its event loop does not compete with the check's threads for
this interpreter's lock), then per mode (STARTTLS, SMTPS):

- the baseline: one full TLS handshake as a mail client makes it (connect, greeting,
  EHLO, STARTTLS, handshake verified against the test CA; for SMTPS connect, handshake,
  greeting), median of ``--runs``;
- ``check_server`` with the CA file and no login (main connection, four version tries,
  two trust checks, all at once), median of ``--runs``; every report must pass and show
  TLS 1.2 and 1.3 accepted, else the script exits 1.

The figure is check / baseline, goal <= 1.5x. On loopback there is no round trip for the
parallel connections to hide, so the ratio shows the handshakes' CPU on this machine;
``--rtt-ms`` (default 20) repeats both measurements through a proxy (this script again,
in a process of its own) that delays every chunk by half the round trip each way, as a
server on the internet would (0: loopback only); the TCP handshake itself is not
delayed (the proxy's kernel accepts at once), in the baseline as in the check. The
script reports; only ``--check`` turns a missed goal (with the simulated round trip, or
on loopback when there is none) into exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "tests", ROOT / "tests" / "support"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench.common import cpu_seconds, ms, verdict_line  # noqa: E402
from transports.base import Mode  # noqa: E402
from transports.findings import Level  # noqa: E402
from transports.mode_probe import EHLO_NAME, read_reply  # noqa: E402
from transports.server_check import ServerReport, check_server  # noqa: E402

GOAL = 1.5  # check_server wall time / one TLS handshake
HOST = "127.0.0.1"
TIMEOUT = 10.0
SERVER_START = 20.0


class BenchFailure(Exception):
    """A check that did not pass, or a handshake that failed."""


# --- the server ---------------------------------------------------------------------------


@contextlib.contextmanager
def started(command: list[str], what: str) -> Iterator[dict]:
    """``command`` in a process of its own, until the block ends: the JSON line it
    prints about itself once it serves."""
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        ready: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=lambda: ready.put(proc.stdout.readline()), daemon=True).start()
        try:
            line = ready.get(timeout=SERVER_START)
        except queue.Empty:
            raise BenchFailure(f"the {what} did not start within {SERVER_START:g} s") from None
        if not line:
            raise BenchFailure(f"the {what} ended at its start")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def smtp_test_server(directory: Path) -> contextlib.AbstractContextManager[dict]:
    script = ROOT / "tests" / "support" / "smtp_server.py"
    command = [sys.executable, str(script), "--dir", str(directory), "--log-level", "CRITICAL"]
    return started(command, "test server")


def delay_proxy(upstream: int, rtt_ms: float) -> contextlib.AbstractContextManager[dict]:
    command = [sys.executable, __file__, "--proxy", str(upstream), "--rtt-ms", f"{rtt_ms:g}"]
    return started(command, "delaying proxy")


def serve_proxy(upstream: int, rtt_ms: float) -> int:
    """The ``--proxy`` mode: print the port, relay until stdin closes or SIGTERM."""
    with DelayProxy(upstream, rtt_ms / 1000) as proxy:
        print(json.dumps({"port": proxy.port}), flush=True)
        sys.stdin.read()
    return 0


class DelayProxy:
    """127.0.0.1:port -> the server's port, every chunk delivered ``rtt / 2`` after it
    arrived (in order), each way: a round trip of ``rtt`` seconds on loopback."""

    def __init__(self, upstream: int, rtt: float) -> None:
        self.upstream, self.delay = upstream, rtt / 2
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> DelayProxy:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accepting.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection((HOST, self.upstream))
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        """Both directions until both ends are done, then both sockets closed."""
        with client, server:
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            workers = [*self._pipe(client, server), *self._pipe(server, client)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> list[threading.Thread]:
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def read() -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    chunks.put((time.monotonic() + self.delay, data))
            chunks.put((time.monotonic() + self.delay, b""))

        def write() -> None:
            try:
                while data := _due(chunks.get()):
                    sink.sendall(data)
                sink.shutdown(socket.SHUT_WR)
            except OSError:  # one end is gone: so is the relay, both ways
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        return [threading.Thread(target=work, daemon=True) for work in (read, write)]


def _due(chunk: tuple[float, bytes]) -> bytes:
    """The chunk's data, once its time has come."""
    due, data = chunk
    time.sleep(max(0.0, due - time.monotonic()))
    return data


# --- what is measured ----------------------------------------------------------------------


def handshake(port: int, mode: Mode, context: ssl.SSLContext) -> float:
    """One TLS handshake as a mail client makes it; its wall seconds."""
    start = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
        if mode is Mode.STARTTLS:
            with sock.makefile("rb") as reader:
                steps = (None, f"EHLO {EHLO_NAME}", "STARTTLS")
                for command, code in zip(steps, (b"220", b"250", b"220"), strict=True):
                    if command:
                        sock.sendall(command.encode() + b"\r\n")
                    reply = read_reply(reader)
                    if not reply or not reply[-1].startswith(code):
                        raise BenchFailure(f"{mode.value}: {command or 'greeting'}: {reply!r}")
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            if mode is Mode.SMTPS and not tls.recv(512).startswith(b"220"):
                raise BenchFailure("smtps: no greeting inside TLS")
    return time.perf_counter() - start


def checked(port: int, mode: Mode, ca_file: str) -> tuple[ServerReport, float]:
    start = time.perf_counter()
    report = check_server("localhost", port, mode=mode, ca_file=ca_file, timeout=TIMEOUT)
    took = time.perf_counter() - start
    accepted = report.tls_versions
    if report.level is not Level.PASS or not (accepted["1.2"] and accepted["1.3"]):
        found = "\n  ".join(f"{f.level.value} {f.check}: {f.text}" for f in report.findings)
        raise BenchFailure(f"check of {mode.value} did not pass:\n  {found}")
    return report, took


def medians(runs: int, measure: Callable[[], float]) -> tuple[float, float]:
    """(median, minimum) of ``runs`` measurements, after one untimed warm-up."""
    measure()
    times = [measure() for _ in range(runs)]
    return statistics.median(times), min(times)


@dataclass
class Figures:
    where: str
    mode: Mode
    baseline: tuple[float, float]
    check: tuple[float, float]
    check_cpu: float  # CPU seconds of this process per check

    @property
    def ratio(self) -> float:
        return self.check[0] / self.baseline[0]


def measure(where: str, port: int, mode: Mode, ca_file: str, runs: int) -> Figures:
    context = ssl.create_default_context(cafile=ca_file)  # made once: the handshake is timed
    baseline = medians(runs, lambda: handshake(port, mode, context))
    cpu = cpu_seconds()
    check = medians(runs, lambda: checked(port, mode, ca_file)[1])
    return Figures(where, mode, baseline, check, (cpu_seconds() - cpu) / (runs + 1))


def report(figures: Figures) -> tuple[str, bool]:
    base, check = figures.baseline, figures.check
    print(
        f"{figures.where:<12}{figures.mode.value:<10}{ms(base[0]):>14}{ms(base[1]):>10}"
        f"{ms(check[0]):>14}{ms(check[1]):>10}{figures.check_cpu * 1000:>10.1f}"
        f"{figures.ratio:>9.2f}x"
    )
    name = f"check / handshake ({figures.mode.value}, {figures.where})"
    return verdict_line(name, figures.ratio, GOAL)


# --- the sender-domain check -------------------------------------------------------------


def dns_section(args: argparse.Namespace) -> None:
    """The DNS check's figures belong here.

    Another part of issue 9 measures transports/dns_check.py in bench/dns_bench.py; this
    script does not import it. Returns None: nothing is measured here yet.
    """
    return None


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measurements of each (default 20)")
    parser.add_argument(
        "--rtt-ms", type=float, default=20.0, help="simulated round trip (0: loopback only)"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    parser.add_argument("--proxy", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.proxy:
        return serve_proxy(args.proxy, args.rtt_ms)
    if not 1 <= args.runs <= 200:
        parser.error("--runs must be between 1 and 200")
    if not 0 <= args.rtt_ms <= 500:
        parser.error("--rtt-ms must be between 0 and 500")
    cpus = len(os.sched_getaffinity(0))
    print(f"server check benchmark: {args.runs} runs per figure, {cpus} CPUs, "
          f"simulated round trip {args.rtt_ms:g} ms")  # fmt: skip

    all_figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="xmailadmin-diagnosis-bench-") as tmp:
        try:
            with smtp_test_server(Path(tmp)) as server:
                ports = {
                    Mode.STARTTLS: server["ports"]["starttls"],
                    Mode.SMTPS: server["ports"]["smtps"],
                }
                print(f"loopback server: {HOST}, starttls {ports[Mode.STARTTLS]}, "
                      f"smtps {ports[Mode.SMTPS]} (own process, pid {server['pid']})")  # fmt: skip
                for mode, port in ports.items():
                    all_figures.append(
                        measure("loopback", port, mode, server["ca_file"], args.runs)
                    )
                    if args.rtt_ms:
                        with delay_proxy(port, args.rtt_ms) as proxy:
                            where = f"rtt {args.rtt_ms:g} ms"
                            all_figures.append(
                                measure(where, proxy["port"], mode, server["ca_file"], args.runs)
                            )
        except BenchFailure as exc:
            print(f"\nfailed, no figures: {exc}", file=sys.stderr)
            return 1
    print()
    print(f"{'where':<12}{'mode':<10}{'handshake ms':>14}{'min ms':>10}{'check ms':>14}"
          f"{'min ms':>10}{'CPU ms':>10}{'ratio':>10}")  # fmt: skip
    verdicts = [report(f) for f in all_figures]
    dns_section(args)
    print()
    for line, _ in verdicts:
        print(line)
    # The goal is about hiding round trips: it is judged where there are some.
    judged = [ok for f, (_, ok) in zip(all_figures, verdicts, strict=True)
              if f.where != "loopback" or not args.rtt_ms]  # fmt: skip
    return 1 if args.check and not all(judged) else 0


if __name__ == "__main__":
    sys.exit(main())
