"""Private, throw-away postfix and exim instances for the relay tests.

Each instance lives in its own directory (configuration, queue or spool, log) and
listens on no port, so instances of parallel tests never meet each other or the
machine's own /etc/postfix. Plain module, no pytest: docs/relays.md shows how to
use it by hand.

The directories are made under /tmp with mode 0755 rather than under pytest's
0700 tmp_path: postfix and exim drop privileges to their own users, which must
reach the queue, the log and the CA file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from transports.relay import EximRelay, PostfixRelay
from transports.relay.procs import process_alive, wait_gone

HOSTNAME = "relaytest.localdomain"
STOP_TIMEOUT = 10.0
REPO = Path(__file__).resolve().parents[3]


def _private_base(prefix: str, ca_file: str | os.PathLike[str]) -> tuple[Path, str]:
    """A fresh 0755 folder holding a copy of the CA file the relay's user can read."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    try:
        copy = shutil.copyfile(ca_file, base / "ca.pem")
    except OSError:
        shutil.rmtree(base)
        raise
    os.chmod(copy, 0o644)
    return base, str(copy)


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, **kwargs)


class PrivatePostfix:
    """A postfix with its own config dir, queue, data dir and log; no smtpd listener."""

    def __init__(self, ca_file: str | os.PathLike[str]) -> None:
        # The postfix user reads the CA after dropping privileges: a copy it can reach.
        self.base, self.ca_file = _private_base("xmailadmin-postfix-", ca_file)
        self.config_dir = self.base / "etc"
        self.queue_dir = self.base / "queue"
        self.data_dir = self.base / "data"
        self.maillog = self.base / "maillog"
        self.relay = PostfixRelay(str(self.config_dir))

    def main_cf(self) -> str:
        return (
            "compatibility_level = 3.6\n"
            f"queue_directory = {self.queue_dir}\n"
            f"data_directory = {self.data_dir}\n"
            f"myhostname = {HOSTNAME}\n"
            "mydestination =\n"
            "alias_maps =\n"
            "alias_database =\n"
            "inet_interfaces = loopback-only\n"
            "inet_protocols = ipv4\n"
            # No smtpd on port 25: instances would clash, and the tests only send out.
            "master_service_disable = inet\n"
            # There is no syslog here: postlogd writes the log the follow-through reads.
            f"maillog_file = {self.maillog}\n"
            f"maillog_file_prefixes = {self.base}\n"
            # A failed test message must not linger or bounce around for days.
            "bounce_queue_lifetime = 0\n"
            "maximal_queue_lifetime = 2m\n"
            "smtp_connect_timeout = 10s\n"
            # A client waiting for a greeting that never comes gives up sooner.
            "smtp_helo_timeout = 5s\n"
        )

    def start(self) -> PrivatePostfix:
        for folder in (self.config_dir, self.queue_dir, self.data_dir):
            folder.mkdir()  # postfix check fills the queue directory with its folders
        shutil.chown(self.data_dir, "postfix")
        (self.config_dir / "main.cf").write_text(self.main_cf())
        shutil.copyfile("/etc/postfix/master.cf", self.config_dir / "master.cf")
        postconf = ["postconf", "-c", str(self.config_dir)]
        # Chroot would need copies of /etc files in the queue; a test instance needs none.
        _run([*postconf, "-F", "-e", "*/*/chroot = n"])
        _backdate(self.config_dir / "main.cf", self.config_dir / "master.cf")
        for step in (["postfix", "-c", str(self.config_dir), "check"], self._postfix("start")):
            done = _run(step)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(step)} failed: {done.stdout}{done.stderr}")
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.relay.master_pid(str(self.queue_dir)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"postfix did not start: {self.log()}")
            time.sleep(0.05)
        return self

    def _postfix(self, *args: str) -> list[str]:
        return ["postfix", "-c", str(self.config_dir), *args]

    def log(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def stop(self) -> None:
        pid = self.relay.master_pid(str(self.queue_dir))
        if pid is not None:
            _run(["postsuper", "-c", str(self.config_dir), "-d", "ALL"])
            _run(self._postfix("stop"))
            if not wait_gone([pid], STOP_TIMEOUT) and process_alive(pid):
                os.kill(pid, 9)  # our own master, by its pid: it did not stop in time
        shutil.rmtree(self.base, ignore_errors=True)


def _backdate(*paths: Path) -> None:
    """Postfix waits until a just-written table is a second old (a file still being
    edited must not be read half): files made before the test need not cost that."""
    then = time.time() - 5
    for path in paths:
        os.utime(path, (then, then))


def private_exim_binary(directory: str | os.PathLike[str] | None = None) -> str:
    """Download and unpack exim once (scripts/private-exim.sh); the exim4 binary's path."""
    directory = directory or os.environ.get("XMAILADMIN_EXIM_DIR") or REPO / ".cache/private-exim"
    done = _run([str(REPO / "scripts/private-exim.sh"), str(directory)])
    if done.returncode != 0:
        raise RuntimeError(f"scripts/private-exim.sh failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


class PrivateExim:
    """Debian's exim4 configuration machinery on a private copy of exim.

    The package's conf.d templates are copied and only pointed at the instance
    (exim_path, CONFDIR, spool, log, pid); update-exim4.conf builds the file that
    exim runs with -C. So the relay code is tested on Debian's real configuration.
    """

    def __init__(self, binary: str, ca_file: str | os.PathLike[str]) -> None:
        self.binary = binary
        self.root = Path(binary).parents[2]  # .../root/usr/sbin/exim4
        self.base, self.ca_file = _private_base("xmailadmin-exim-", ca_file)
        self.conf_dir = self.base / "etc" / "exim4"
        self.spool = self.base / "spool"
        self.logs = self.base / "log"
        self.config_file = self.base / "exim4.conf"
        self.relay = EximRelay(
            binary=binary,
            conf_dir=str(self.conf_dir),
            config_file=str(self.config_file),
            update_exim4_conf=str(self.root / "usr/sbin/update-exim4.conf"),
        )

    @property
    def mainlog(self) -> Path:
        return self.logs / "mainlog"

    def start(self) -> PrivateExim:
        shutil.copytree(self.root / "etc/exim4", self.conf_dir)
        for folder in (self.spool, self.logs):
            folder.mkdir()
            shutil.chown(folder, "Debian-exim", "Debian-exim")
        main = self.conf_dir / "conf.d/main"
        # exim re-executes itself through exim_path, which can be set only once.
        macrodefs = main / "01_exim4-config_listmacrosdefs"
        macrodefs.write_text(
            macrodefs.read_text().replace(
                "exim_path = /usr/sbin/exim4", f"exim_path = {self.binary}"
            )
        )
        (main / "00_xmailadmin_private_instance").write_text(
            f"CONFDIR = {self.conf_dir}\n"
            f"SPOOLDIR = {self.spool}\n"
            f"MAIN_QUALIFY_DOMAIN = {HOSTNAME}\n"
            f"log_file_path = {self.logs}/%slog\n"
            f"pid_file_path = {self.pid_file}\n"
            "disable_ipv6 = true\n"
        )
        (self.conf_dir / "update-exim4.conf.conf").write_text(
            "dc_eximconfig_configtype='internet'\n"
            "dc_other_hostnames=''\n"
            # Exim takes the addresses it listens on for "this host" and refuses a
            # smarthost there; the test server is on 127.0.0.1, so name only ::1 (no
            # daemon listens, IPv6 is off).
            "dc_local_interfaces='::1;'\n"
            "dc_readhost=''\n"
            "dc_relay_domains=''\n"
            "dc_minimaldns='false'\n"
            "dc_relay_nets=''\n"
            "dc_smarthost=''\n"
            "CFILEMODE='644'\n"
            "dc_use_split_config='true'\n"
            "dc_hide_mailname=''\n"
            "dc_mailname_in_oh='true'\n"
            "dc_localdelivery='mail_spool'\n"
        )
        done = _run(self.relay.update_argv())
        if done.returncode != 0:
            raise RuntimeError(f"update-exim4.conf failed: {done.stderr}")
        return self

    @property
    def pid_file(self) -> Path:
        return self.base / "exim.pid"

    def start_daemon(self) -> int:
        """A queue-runner daemon (no SMTP listener); -oP: only then does it write a pid."""
        _run([*self.relay.exim(), "-q30m", "-oP", str(self.pid_file)])
        deadline = time.monotonic() + STOP_TIMEOUT
        while (pid := self.relay.daemon_pid()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the exim daemon did not start: {self.log()}")
            time.sleep(0.05)
        return pid

    def log(self) -> str:
        return self.mainlog.read_text(errors="replace") if self.mainlog.exists() else ""

    def stop(self) -> None:
        pid = self.relay.daemon_pid()
        if pid is not None:
            os.kill(pid, 15)
            wait_gone([pid], STOP_TIMEOUT)
        shutil.rmtree(self.base, ignore_errors=True)
