"""Outbox benchmark (issue 8): submission latency and delivery throughput, as ratios.

    .venv/bin/python bench/outbox_bench.py [--n 200] [--messages 1000]
        [--commands python3,curl,msmtp] [--python PATH] [--check]

1. Submission: ``--n`` runs each, interleaved, of ``bin/xmail-sendmail -t < message``
   (the real entry point, exec'd as its ``#!/usr/bin/env python3`` says, into a fresh
   outbox made with ``outbox.spool.prepare``) and of postfix's ``/usr/sbin/sendmail -t``.
   Postfix's sendmail runs with ``-C`` on a private configuration whose
   ``queue_directory`` is a temporary folder: the real setgid ``postdrop`` writes
   into that folder's maildrop and nothing else. No postfix master or pickup runs
   there, so no message can leave; the folder is deleted at the end. (Postdrop accepts
   the private configuration only from root: otherwise the postfix side is skipped.)
   Also measured: the interpreter alone (``python3 -c pass``), the floor of any
   entry point written in Python. Figure: xmail-sendmail / postfix sendmail, median,
   goal <= 2x.
2. Throughput, per first command of the order (``--commands``): ``--messages``
   messages put into the outbox, then one ``xmailadmin.delivery.run`` (Django on a
   SQLite file in a temporary folder, the default account on the loopback test SMTP
   server) until all are delivered; against a bare loop sending the same number
   through that command's transport (``relay_settings.transport_for(key).send``). The
   server must have received every message of each. Figure: outbox / bare loop (wall
   time), goal <= 0.5x for a shipped script (python3, perl: only reachable by carrying
   many messages over one connection) and <= 1.1x otherwise. Printed with it: the sum
   of the attempts' ``duration_s`` and, as it over the wall time, how many mail commands
   ran at once on average (``XMAILADMIN_OUTBOX_CONCURRENCY``).

When ``python3`` on PATH is a script (a pyenv shim costs ~100 ms a start), the
benchmark puts a ``python3`` linking to ``/usr/bin/python3`` (or ``--python``) first on
PATH for the python3 transport, as on a Debian server; the entry point names
``/usr/bin/python3 -IS`` in its shebang and does not depend on PATH. The script reports; only
``--check`` turns a missed goal into exit status 1. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "tests", ROOT / "tests" / "support"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from pki import make_pki  # noqa: E402
from smtp_server import SmtpTestServer  # noqa: E402

from bench.common import cpu_seconds, ms, verdict_line  # noqa: E402
from outbox import spool  # noqa: E402
from outbox.submit import Options, prepared  # noqa: E402
from transports.base import Mode  # noqa: E402
from transports.scripted import ScriptTransport  # noqa: E402

GOAL_SUBMIT = 2.0  # xmail-sendmail / postfix sendmail, median latency
GOAL_SCRIPT = 0.5  # outbox / bare loop when the first command is a shipped script
GOAL_COMMAND = 1.1  # outbox / bare loop for any other first command
ENTRY = ROOT / "bin" / "xmail-sendmail"
POSTFIX_SENDMAIL = Path("/usr/sbin/sendmail")
SENDER = "app@example.org"  # the application's From; the account's address is MAIL FROM
RECIPIENT = "rcpt@example.net"
WARMUP = 5  # untimed submissions of each kind first: page cache, interpreters
RUN_TIMEOUT = 30.0
ARRIVAL_TIMEOUT = 30.0


class BenchFailure(Exception):
    """A submission or send that failed, or a message that did not arrive."""


class Unavailable(Exception):
    """What cannot be measured on this machine, and why."""


def message(subject: str) -> bytes:
    return (
        f"From: Bench <{SENDER}>\nTo: {RECIPIENT}\nSubject: {subject}\n\n"
        "Gruesse aus dem Outbox-Benchmark.\n"
    ).encode()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def count_files(folder: Path) -> int:
    return sum(1 for _ in folder.iterdir())


# --- which python3 the entry point runs on ---------------------------------------------


def _is_script(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"#!"


def choose_python(explicit: str | None) -> tuple[str, str]:
    """The interpreter ``/usr/bin/env python3`` should find, and why that one."""
    if explicit:
        return explicit, "given with --python"
    found = shutil.which("python3")
    if found and not _is_script(found):
        return os.path.realpath(found), "python3 on PATH"
    if Path("/usr/bin/python3").exists():
        return "/usr/bin/python3", (
            f"PATH's python3 ({found}) is a script, a pyenv shim: /usr/bin/python3 instead, "
            "as on a Debian server"
        )
    raise SystemExit("no python3 interpreter found; name one with --python")


def python_first_on_path(python: str, work: Path) -> None:
    """PATH with a folder holding ``python3`` -> ``python`` first."""
    folder = work / "python-bin"
    folder.mkdir()
    (folder / "python3").symlink_to(python)
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{folder}:{old}"


# --- 1. submission latency -----------------------------------------------------------------


def postfix_sandbox(work: Path) -> Path:
    """A private postfix configuration whose queue is under ``work``; its directory.

    Like an installed postfix that is stopped: the maildrop and a ``public/pickup``
    socket nobody listens on (postdrop's wake-up fails at once, as xmail-sendmail's
    FIFO write does without a listener)."""
    if not POSTFIX_SENDMAIL.exists() or shutil.which("postconf") is None:
        raise Unavailable("postfix is not installed (no /usr/sbin/sendmail or postconf)")
    if POSTFIX_SENDMAIL.resolve() != POSTFIX_SENDMAIL:
        raise Unavailable(f"{POSTFIX_SENDMAIL} links to {POSTFIX_SENDMAIL.resolve()}")
    if os.geteuid() != 0:
        raise Unavailable(
            "not root: postdrop takes a private configuration (-C) only from root or when "
            "/etc/postfix/main.cf lists it in alternate_config_directories"
        )
    try:
        owner, group = pwd.getpwnam("postfix").pw_uid, _gid("postdrop")
    except KeyError as exc:
        raise Unavailable(f"postfix's user or group is missing: {exc}") from exc
    conf, queue = work / "postfix-conf", work / "postfix-queue"
    for sub in (conf, queue / "maildrop", queue / "public", work / "postfix-data"):
        sub.mkdir(parents=True)
    for name in ("master.cf", "dynamicmaps.cf"):
        if Path("/etc/postfix", name).exists():
            shutil.copy(Path("/etc/postfix", name), conf / name)
    (conf / "main.cf").write_text(
        "compatibility_level = 3.6\n"
        f"queue_directory = {queue}\n"
        f"data_directory = {work / 'postfix-data'}\n"
        "command_directory = /usr/sbin\n"
        "daemon_directory = /usr/lib/postfix/sbin\n"
        "mail_owner = postfix\nsetgid_group = postdrop\n"
        "myhostname = bench.localdomain\ninet_interfaces = loopback-only\n"
    )
    pickup = queue / "public" / "pickup"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(pickup))
    for path, mode in ((queue / "maildrop", 0o1730), (queue / "public", 0o2710), (pickup, 0o660)):
        os.chown(path, owner, group)
        os.chmod(path, mode)
    return conf


def _gid(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


@dataclass
class Submitter:
    label: str
    argv: list[str]
    env: dict[str, str]
    times: list[float] = field(default_factory=list)

    def run_once(self, data: bytes) -> float:
        start = time.perf_counter()
        done = subprocess.run(
            self.argv, input=data, env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, timeout=RUN_TIMEOUT, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise BenchFailure(
                f"{self.label}: exit {done.returncode}: {done.stderr.decode(errors='replace')}"
            )
        return wall


def submitters(work: Path) -> tuple[list[Submitter], list[str]]:
    """What part 1 runs, and notes on what it could not."""
    outbox = work / "submit-outbox"
    spool.prepare(outbox)
    env = {**os.environ, "XMAILADMIN_OUTBOX": str(outbox)}
    rows = [
        Submitter("xmail-sendmail -t", [str(ENTRY), "-t"], env),
        # The floor: the interpreter the shebang names, started as the shebang does.
        Submitter("python3 -IS -c pass", ["/usr/bin/python3", "-IS", "-c", "pass"], env),
    ]
    notes: list[str] = []
    try:
        conf = postfix_sandbox(work)
    except Unavailable as exc:
        notes.append(f"postfix sendmail not measured: {exc}")
    else:
        rows.insert(0, Submitter("postfix sendmail -t", [str(POSTFIX_SENDMAIL), "-C",
                                                        str(conf), "-t"], env))  # fmt: skip
    return rows, notes


def measure_submission(rows: list[Submitter], n: int) -> None:
    """Interleaved, each round in a rotated order, so drift hits every row alike."""
    for i in range(WARMUP + n):
        data = message(f"submission {i}")
        for k in range(len(rows)):
            row = rows[(i + k) % len(rows)]
            wall = row.run_once(data)
            if i >= WARMUP:
                row.times.append(wall)


def report_submission(rows: list[Submitter], work: Path, n: int) -> list[tuple[str, bool]]:
    by_label = {r.label: r for r in rows}
    postfix = by_label.get("postfix sendmail -t")
    base = statistics.median(postfix.times) if postfix else None
    print(f"{'submission':<24}{'median ms':>11}{'p95 ms':>9}{'min ms':>9}{'/ postfix':>11}")
    for row in rows:
        med = statistics.median(row.times)
        ratio = f"{med / base:10.2f}x" if base else f"{'-':>11}"
        print(f"{row.label:<24}{ms(med):>11}{ms(p95(row.times)):>9}{ms(min(row.times)):>9}{ratio}")
    expected = (WARMUP + n) * sum(1 for r in rows if r.label.startswith("xmail-sendmail"))
    taken = count_files(work / "submit-outbox" / "new")
    print(f"xmail outbox new/: {taken} messages (expected {expected})")
    if taken != expected:
        raise BenchFailure("xmail-sendmail exited 0 but a message is missing from new/")
    if postfix is None:
        return []
    dropped = count_files(work / "postfix-queue" / "maildrop")
    print(f"postfix private maildrop: {dropped} messages (expected {WARMUP + n}); "
          "deleted with the temporary folder")  # fmt: skip
    xmail = by_label["xmail-sendmail -t"]
    ratio_p95 = p95(xmail.times) / p95(postfix.times)
    print(f"p95 ratio xmail-sendmail / postfix sendmail: {ratio_p95:.2f}x")
    return [
        verdict_line(
            "submission latency xmail-sendmail / postfix sendmail (median)",
            statistics.median(xmail.times) / base,
            GOAL_SUBMIT,
        )
    ]


def submission_part(work: Path, n: int) -> list[tuple[str, bool]]:
    rows, notes = submitters(work)
    for note in notes:
        print(note)
    system_maildrop = Path("/var/spool/postfix/maildrop")
    before = count_files(system_maildrop) if os.access(system_maildrop, os.R_OK) else None
    measure_submission(rows, n)
    if before is not None:
        after = count_files(system_maildrop)
        print(f"system maildrop {system_maildrop}: {before} files before, {after} after")
        if after != before:
            raise BenchFailure("a message went into the system's postfix maildrop")
    return report_submission(rows, work, n)


# --- 2. delivery throughput ----------------------------------------------------------------


@dataclass
class Pass:
    """One way of sending ``count`` messages: wall, time inside transport.send, CPU."""

    wall: float
    in_send: float
    cpu: float
    count: int
    pickup: float | None = None  # outbox only: from the run's start to the first send


def setup_django(work: Path, outbox: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="xmailadmin.settings",
        XMAILADMIN_VAR_DIR=str(work / "var"),
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        XMAILADMIN_OUTBOX=str(outbox),
        XMAILADMIN_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # The in-process test server would log every SMTP line.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def make_account(server: SmtpTestServer):
    """The default account on the test server's STARTTLS port, as tests/panel's fixture."""
    from xmailadmin.models import Account

    acc = Account(
        name="Testserver", host=server.host, port=server.starttls_port,
        username=server.user, sender="panel@example.org", recipient="admin@example.org",
        ca_file=str(server.ca_file), mode=Mode.STARTTLS.value, is_default=True,
    )  # fmt: skip
    acc.set_password(server.password)
    acc.save()
    return acc


def use_order(key: str) -> None:
    """``key`` first and the only command switched on: no fallback in the figures."""
    from xmailadmin.order import current_order, proposal_from, save_order

    rest = [k for k in current_order().order if k != key]
    save_order(proposal_from([key, *rest], [key]))


def prepared_messages(label: str, count: int) -> list[tuple[spool.Envelope, bytes]]:
    """As xmail-sendmail -t keeps them (Date and Message-ID added)."""
    opts = Options(from_headers=True, sender=SENDER)
    user = pwd.getpwuid(os.getuid()).pw_name
    return [prepared(message(f"{label} {i}"), opts, user) for i in range(count)]


def arrived(server: SmtpTestServer, count: int, what: str) -> None:
    try:
        server.wait_for(count, timeout=ARRIVAL_TIMEOUT)
    except AssertionError as exc:
        raise BenchFailure(f"{what}: {len(server.messages())} of {count} arrived") from exc
    if len(server.messages()) != count:
        raise BenchFailure(f"{what}: {len(server.messages())} arrived, {count} sent")


def bare_loop(transport, target, server: SmtpTestServer, count: int) -> Pass:
    messages = [kept for _, kept in prepared_messages(f"bare {transport.key}", count)]
    server.clear()
    cpu, in_send = cpu_seconds(), 0.0
    start = time.perf_counter()
    for data in messages:
        result = transport.send(target, data)
        if not result.ok:
            raise BenchFailure(f"bare loop {transport.key}: {result.step.value}: {result.reason}")
        in_send += result.duration_s
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    arrived(server, count, f"bare loop {transport.key}")
    return Pass(wall, in_send, cpu, count)


def clear_outbox_rows() -> None:
    from xmailadmin.models import OutboxMessage

    OutboxMessage.objects.all().delete()  # attempts go with their message


def through_outbox(
    key: str, folder: Path, server: SmtpTestServer, count: int
) -> tuple[Pass, float]:
    """The outbox pass, and how long putting the messages in took (not in the ratio)."""
    from xmailadmin import delivery
    from xmailadmin.models import DeliveryAttempt, Outbox, OutboxMessage

    clear_outbox_rows()
    messages = prepared_messages(f"outbox {key}", count)
    start = time.perf_counter()
    for envelope, kept in messages:
        spool.submit(folder, envelope, kept)
    submitted = time.perf_counter() - start
    server.clear()
    cpu, began = cpu_seconds(), time.time()
    start = time.perf_counter()
    summary = delivery.run(folder, budget_s=3600)
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    arrived(server, count, f"outbox {key}")
    delivered = OutboxMessage.objects.filter(state=Outbox.DELIVERED).count()
    left = count_files(folder / "new") + count_files(folder / "cur")
    if summary.delivered != count or delivered != count or left:
        raise BenchFailure(
            f"outbox {key}: {summary.delivered} delivered by the run, {delivered} rows "
            f"delivered, {left} files left in new/ and cur/, of {count}"
        )
    tries = DeliveryAttempt.objects.order_by("at")
    if tries.count() != count or tries.filter(ok=False).exists():
        raise BenchFailure(f"outbox {key}: {tries.count()} attempts for {count} messages")
    first = tries.first()
    in_send = sum(tries.values_list("duration_s", flat=True))
    pickup = first.at.timestamp() - began - first.duration_s
    return Pass(wall, in_send, cpu, count, pickup), submitted


def warm_up(transport, target, key: str, folder: Path, server: SmtpTestServer) -> None:
    """One untimed message each way: interpreters, page cache, first TLS session."""
    bare_loop(transport, target, server, 1)
    through_outbox(key, folder, server, 1)


def throughput(key: str, folder: Path, server: SmtpTestServer, account, password: str,
               count: int) -> tuple[str, bool] | None:  # fmt: skip
    from xmailadmin import relay_settings

    transport = relay_settings.transport_for(key)
    if transport.which() is None:
        print(f"{key}: not installed, skipped")
        return None
    use_order(key)
    target = account.target(password, RECIPIENT)
    warm_up(transport, target, key, folder, server)
    bare = bare_loop(transport, target, server, count)
    outbox, submitted = through_outbox(key, folder, server, count)
    print(f"-- first command {key} ({os.path.realpath(transport.which())}), {count} messages")
    print(f"{'path':<12}{'wall s':>9}{'msg/s':>9}{'in send s':>11}{'other s':>9}"
          f"{'other ms/msg':>14}{'CPU ms/msg':>12}")  # fmt: skip
    for name, p in (("bare loop", bare), ("outbox", outbox)):
        other = p.wall - p.in_send
        # With several commands at once their times add up past the wall time: then
        # "other" says nothing, and the concurrency below says more.
        shown = (f"{other:9.2f}{other / p.count * 1000:14.2f}" if other >= 0
                 else f"{'-':>9}{'-':>14}")  # fmt: skip
        print(f"{name:<12}{p.wall:9.2f}{p.count / p.wall:9.1f}{p.in_send:11.2f}{shown}"
              f"{p.cpu / p.count * 1000:12.2f}")  # fmt: skip
    extra = outbox.wall - bare.wall
    print(
        f"outbox - bare loop: {extra:+.2f} s = {extra / count * 1000:+.2f} ms/msg; "
        f"pickup of {count} rows before the first send ~{outbox.pickup:.2f} s; "
        f"on average {outbox.in_send / outbox.wall:.1f} mail commands ran at once "
        f"(XMAILADMIN_OUTBOX_CONCURRENCY {os.environ.get('XMAILADMIN_OUTBOX_CONCURRENCY', 4)}; "
        f"{os.cpu_count()} CPUs)"
    )
    print(f"putting {count} into the outbox (spool.submit in-process, not in the ratio): "
          f"{submitted:.2f} s")  # fmt: skip
    scripted = isinstance(transport, ScriptTransport)
    goal = GOAL_SCRIPT if scripted else GOAL_COMMAND
    kind = "shipped script" if scripted else "command"
    return verdict_line(f"throughput outbox / bare loop, {key} ({kind})", outbox.wall / bare.wall,
                        goal)  # fmt: skip


def throughput_part(work: Path, keys: list[str], count: int) -> list[tuple[str, bool]]:
    folder = work / "outbox"
    spool.prepare(folder)
    setup_django(work, folder)
    verdicts = []
    server = SmtpTestServer(make_pki(work / "pki"), work / "received")
    with server:
        print(f"loopback server: 127.0.0.1, starttls {server.starttls_port}")
        account = make_account(server)
        password = account.decrypt_password()
        for key in keys:
            print()
            verdict = throughput(key, folder, server, account, password, count)
            if verdict is not None:
                verdicts.append(verdict)
    return verdicts


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="submissions of each (0: skip)")
    parser.add_argument("--messages", type=int, default=1000, help="per command (0: skip)")
    parser.add_argument("--commands", default="python3,curl,msmtp", help="first commands")
    parser.add_argument("--python", help="the python3 for the entry point and transport")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    if not 0 <= args.n <= 5000 or not 0 <= args.messages <= 20000:
        parser.error("--n must be 0..5000 and --messages 0..20000")
    keys = [k.strip() for k in args.commands.split(",") if k.strip()]
    from transports.catalogue import BY_KEY

    if unknown := [k for k in keys if k not in BY_KEY]:
        parser.error(f"unknown command(s): {', '.join(unknown)}")

    verdicts: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="xmailadmin-outbox-bench-") as tmp:
        work = Path(tmp)
        python, why = choose_python(args.python)
        python_first_on_path(python, work)
        print(f"outbox benchmark: {len(os.sched_getaffinity(0))} CPUs, uid {os.getuid()}, "
              f"python3 = {python} ({why})")  # fmt: skip
        try:
            if args.n:
                print(f"\n== submission latency, {args.n} runs each, interleaved")
                verdicts += submission_part(work, args.n)
            if args.messages and keys:
                print(f"\n== delivery throughput, {args.messages} messages per command")
                verdicts += throughput_part(work, keys, args.messages)
        except BenchFailure as exc:
            print(f"\nbenchmark failed, no verdict:\n{exc}", file=sys.stderr)
            return 1
    print()
    for line, _ in verdicts:
        print(line)
    return 1 if args.check and not all(ok for _, ok in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
