"""A provider-like submission server on loopback: a private postfix with Dovecot SASL.

The aiosmtpd server (smtp_server.py) answers as postfix would; this one IS postfix,
so the things only a real MTA does are tested too: Dovecot's AUTH, postfix's
STARTTLS and implicit-TLS listeners, ``reject_sender_login_mismatch`` at RCPT, and
delivery into a Maildir whose Return-Path and Received headers show the envelope
sender and the TLS version the server saw.

Postfix runs as tests/transports/relay/private_mta.py runs it (own config, queue,
data dir and log under one /tmp folder, nothing in /etc/postfix), plus two smtpd
listeners on free 127.0.0.1 ports. Dovecot (``dovecot -c``) has its own base_dir and
state_dir and no IMAP/POP listener: it only answers postfix's auth socket. Needs
root, postfix and dovecot-core (scripts/setup.sh test). Plain module, no pytest.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from functools import cached_property
from pathlib import Path
from typing import cast

_RELAY_HELPERS = str(Path(__file__).resolve().parents[1] / "transports" / "relay")
if _RELAY_HELPERS not in sys.path:
    sys.path.append(_RELAY_HELPERS)

from pki import Pki  # noqa: E402
from private_mta import STOP_TIMEOUT, PrivatePostfix, _backdate, _run  # noqa: E402
from smtp_server import DEFAULT_PASSWORD, DEFAULT_SENDERS, DEFAULT_USER, HOST  # noqa: E402

from transports.message import TEST_ID_HEADER  # noqa: E402
from transports.relay.procs import process_alive, read_pid, wait_gone  # noqa: E402

DOMAINS = ("example.org", "example.net")
# virtual(8) refuses to deliver as root; nobody owns the Maildirs.
MAILBOX_UID = 65534
DELIVERY_TIMEOUT = 20.0

# Per-listener smtpd options, as a provider's master.cf has them.
SUBMISSION_OPTIONS = {
    "syslog_name": "postfix/submission",
    "smtpd_tls_security_level": "encrypt",
    "smtpd_tls_auth_only": "yes",
    "smtpd_sasl_auth_enable": "yes",
}
SMTPS_OPTIONS = {
    "syslog_name": "postfix/smtps",
    "smtpd_tls_wrappermode": "yes",
    "smtpd_sasl_auth_enable": "yes",
}


def free_port() -> int:
    """A port free right now; postfix must be told a number, it cannot take port 0."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def ssha512(password: str) -> str:
    """Dovecot's {SSHA512} scheme: the password file holds no clear password."""
    salt = os.urandom(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


@dataclass(eq=False)
class Delivered:
    """One message as virtual(8) wrote it into the Maildir."""

    path: Path
    raw: bytes = field(repr=False)

    @cached_property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, BytesParser(policy=default_policy).parsebytes(self.raw))

    @property
    def return_path(self) -> str:
        return str(self.message["Return-Path"]).strip()

    @property
    def received(self) -> str:
        """The topmost Received header: the hop from the client to this postfix."""
        return " ".join(str(self.message["Received"]).split())


class PrivateDovecot:
    """A Dovecot that only authenticates, for postfix's smtpd_sasl_type = dovecot."""

    def __init__(self, base: Path, user: str, password: str) -> None:
        self.base = base
        self.run_dir = base / "run"
        self.conf = base / "dovecot.conf"
        self.users = base / "users"
        self.log_file = base / "dovecot.log"
        self.auth_socket = base / "auth-postfix"
        self.user = user
        self.password = password

    def dovecot_conf(self) -> str:
        return (
            f"base_dir = {self.run_dir}\n"
            f"state_dir = {self.base / 'state'}\n"
            f"instance_name = xmailadmin-dovecot-{os.getpid()}\n"
            "protocols =\n"
            "ssl = no\n"
            f"log_path = {self.log_file}\n"
            "auth_mechanisms = plain login\n"
            # Logins are addresses, kept as typed (the default %Lu would lowercase them).
            "auth_username_format = %u\n"
            "passdb {\n"
            "  driver = passwd-file\n"
            f"  args = scheme=SSHA512 {self.users}\n"
            "}\n"
            "userdb {\n"
            "  driver = static\n"
            "  args = uid=nobody gid=nogroup home=/nonexistent\n"
            "}\n"
            # Dovecot's penalty grows per client IP up to 15 s a try; every test
            # comes from 127.0.0.1. A closed socket switches it off (Dovecot's own
            # advice); the provider's 2 s auth_failure_delay stays.
            "service anvil {\n"
            "  unix_listener anvil-auth-penalty {\n"
            "    mode = 0\n"
            "  }\n"
            "}\n"
            "service auth {\n"
            f"  unix_listener {self.auth_socket} {{\n"
            "    mode = 0660\n"
            "    user = postfix\n"
            "    group = postfix\n"
            "  }\n"
            "}\n"
        )

    def start(self) -> PrivateDovecot:
        for folder in (self.base, self.run_dir, self.base / "state"):
            folder.mkdir(mode=0o755, exist_ok=True)
        self.conf.write_text(self.dovecot_conf())
        # The auth process runs as the dovecot user and reads the file after dropping root.
        self.users.write_text(f"{self.user}:{ssha512(self.password)}\n")
        shutil.chown(self.users, "root", "dovecot")
        self.users.chmod(0o640)
        # The daemon keeps its stdio: a pipe would never reach EOF, so a file it is.
        with (self.base / "start.out").open("w+") as out:
            done = subprocess.run(
                ["dovecot", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
            )
            out.seek(0)
            if done.returncode != 0:
                raise RuntimeError(f"dovecot did not start: {out.read()}{self.log()}")
        deadline = time.monotonic() + STOP_TIMEOUT
        while not self.auth_socket.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot opened no auth socket: {self.log()}")
            time.sleep(0.05)
        return self

    @property
    def pid(self) -> int | None:
        return read_pid(str(self.run_dir / "master.pid"))

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        pid = self.pid
        if pid is None or not process_alive(pid):
            return
        os.kill(pid, 15)  # our own master, by its pid; it takes its children along
        if not wait_gone([pid], STOP_TIMEOUT) and process_alive(pid):
            os.kill(pid, 9)


class SubmissionServer(PrivatePostfix):
    """Postfix with STARTTLS (587-like) and implicit TLS (465-like) submission on
    loopback, Dovecot SASL, sender login maps and Maildir delivery for DOMAINS.

    Has the attributes tests/transports/mailcommands.py make_target() reads.
    """

    def __init__(
        self,
        pki: Pki,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        senders: frozenset[str] = DEFAULT_SENDERS,
    ) -> None:
        super().__init__(pki.ca_file)
        self.pki = pki
        self.user = user
        self.password = password
        self.senders = senders
        self.starttls_port = free_port()
        self.smtps_port = free_port()
        self.maps_dir = self.base / "maps"
        self.mail_dir = self.base / "mail"
        self.dovecot = PrivateDovecot(self.base / "dovecot", user, password)

    def main_cf(self) -> str:
        return super().main_cf() + (
            # Loopback is no trusted network here: only a login may send.
            "mynetworks =\n"
            "smtpd_relay_restrictions = permit_sasl_authenticated, reject\n"
            f"smtpd_tls_cert_file = {self.maps_dir / 'server.pem'}\n"
            f"smtpd_tls_key_file = {self.maps_dir / 'server-key.pem'}\n"
            "smtpd_tls_received_header = yes\n"
            "smtpd_tls_loglevel = 1\n"
            "smtpd_sasl_type = dovecot\n"
            f"smtpd_sasl_path = {self.dovecot.auth_socket}\n"
            f"smtpd_sender_login_maps = texthash:{self.maps_dir / 'sender_logins'}\n"
            "smtpd_sender_restrictions = reject_sender_login_mismatch\n"
            f"virtual_mailbox_domains = {', '.join(DOMAINS)}\n"
            f"virtual_mailbox_base = {self.mail_dir}\n"
            f"virtual_mailbox_maps = texthash:{self.maps_dir / 'mailboxes'}\n"
            f"virtual_uid_maps = static:{MAILBOX_UID}\n"
            f"virtual_gid_maps = static:{MAILBOX_UID}\n"
        )

    def start(self) -> SubmissionServer:
        try:
            self._write_maps()
            self.dovecot.start()
            super().start()
            self._open_listeners()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_maps(self) -> None:
        self.maps_dir.mkdir()
        shutil.copyfile(self.pki.cert_file, self.maps_dir / "server.pem")
        key = shutil.copyfile(self.pki.key_file, self.maps_dir / "server-key.pem")
        os.chmod(key, 0o600)
        logins = "".join(f"{sender} {self.user}\n" for sender in sorted(self.senders))
        (self.maps_dir / "sender_logins").write_text(logins)
        # One Maildir per domain (the trailing slash): virtual(8) allows no $1 per user.
        (self.maps_dir / "mailboxes").write_text("".join(f"@{d} {d}/\n" for d in DOMAINS))
        self.mail_dir.mkdir(mode=0o755)
        shutil.chown(self.mail_dir, MAILBOX_UID, MAILBOX_UID)
        _backdate(*self.maps_dir.iterdir())

    def _open_listeners(self) -> None:
        """Swap port 25 (never opened: master_service_disable) for the two listeners."""
        postconf = ["postconf", "-c", str(self.config_dir)]
        for step in ([*postconf, "-X", "master_service_disable"], [*postconf, "-MX", "smtp/inet"]):
            done = _run(step)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(step)} failed: {done.stderr}")
        master_cf = self.config_dir / "master.cf"
        with master_cf.open("a") as fh:
            fh.write(_listener(self.starttls_port, SUBMISSION_OPTIONS))
            fh.write(_listener(self.smtps_port, SMTPS_OPTIONS))
        _backdate(master_cf, self.config_dir / "main.cf")
        done = _run(self._postfix("reload"))
        if done.returncode != 0:
            raise RuntimeError(f"postfix reload failed: {done.stderr}")
        for port in (self.starttls_port, self.smtps_port):
            self._wait_listening(port)

    def _wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postfix does not listen on {port}: {self.log()}") from None
                time.sleep(0.05)

    def maildir(self, domain: str) -> Path:
        return self.mail_dir / domain

    def delivered(self, domain: str) -> list[Delivered]:
        new = self.maildir(domain) / "new"
        files = sorted(new.iterdir()) if new.is_dir() else []
        return [Delivered(path, path.read_bytes()) for path in files]

    def wait_for(self, test_id: str, domain: str, timeout: float = DELIVERY_TIMEOUT) -> Delivered:
        """The message with this TEST_ID_HEADER once virtual(8) has delivered it."""
        deadline = time.monotonic() + timeout
        while True:
            for got in self.delivered(domain):
                if str(got.message[TEST_ID_HEADER] or "").strip() == test_id:
                    return got
            if time.monotonic() > deadline:
                raise AssertionError(f"no message {test_id} in {domain}'s Maildir: {self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.dovecot.stop()
        super().stop()


def _listener(port: int, options: dict[str, str]) -> str:
    lines = [f"{HOST}:{port} inet n - n - - smtpd"]
    lines += [f"  -o {name}={value}" for name, value in options.items()]
    return "\n".join(lines) + "\n"
