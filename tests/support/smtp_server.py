"""A real SMTP server on loopback for the test suite and the benchmarks.

aiosmtpd runs in its own thread and event loop, with implicit-TLS and STARTTLS
listeners, AUTH PLAIN/LOGIN and certificates from a throw-away CA, and keeps
every accepted message in memory and on disk. Plain module: no pytest, no
Django, so benchmarks can import it or run it standalone:

    python tests/support/smtp_server.py --dir /tmp/x   # prints one JSON line, serves till SIGTERM

Everything binds to 127.0.0.1 on ports chosen by the OS, so several pytest-xdist
workers can each run their own server.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hmac
import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from functools import cached_property
from pathlib import Path
from typing import Any, cast

# Run as a script (benchmarks, by hand), only this folder is on sys.path; the repository
# root holds transports/.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session  # noqa: E402
from pki import Pki, make_pki  # noqa: E402

from transports.message import TEST_ID_HEADER  # noqa: E402

HOST = "127.0.0.1"
# An address, as most providers' logins are: every command must carry it intact
# (percent-encoded in an SMTP URL, "@" and all).
DEFAULT_USER = "tester@example.org"
# The sender addresses the login owns (postfix: smtpd_sender_login_maps): the login
# itself and the senders the suite sends as (tests/transports/mailcommands.py, the
# relay cases, the panel's test account, bench/panel_bench.py). Any other MAIL FROM is
# refused at RCPT.
DEFAULT_SENDERS = frozenset(
    {DEFAULT_USER, "absender@example.org", "panel@example.org", "bench@example.org"}
)
# Plain ASCII punctuation only: some mail commands mangle quotes, spaces or
# non-ASCII in passwords, and those are not what the product's tests are about.
DEFAULT_PASSWORD = "S3cret-T3st-pw!"
DATA_SIZE_LIMIT = 32 * 1024 * 1024
# asyncio's default of 60 s would make a wrong-mode client hang a test for a minute.
HANDSHAKE_TIMEOUT = 10.0
# Also bounds a STARTTLS handshake, which aiosmtpd runs without its own timeout.
IDLE_TIMEOUT = 30.0
START_TIMEOUT = 10.0

log = logging.getLogger(__name__)


# --- received messages ----------------------------------------------------


@dataclass(eq=False)
class Received:
    """One message accepted by the server, as the client sent it after DATA."""

    n: int
    listener: str  # "starttls", "smtps", "tls12", "wrong_host", "other_ca_…", "plain"
    mode: str  # "starttls", "smtps" or "plain"
    port: int
    mail_from: str
    rcpt_tos: list[str]
    auth_user: str | None
    helo: str | None
    tls_version: str | None  # e.g. "TLSv1.3"
    cipher: str | None  # e.g. "TLS_AES_256_GCM_SHA384"
    peer: str
    received_at: dt.datetime
    eml_path: Path
    json_path: Path
    raw: bytes = field(repr=False)
    mail_options: list[str] = field(default_factory=list)
    rcpt_options: list[str] = field(default_factory=list)

    @cached_property
    def message(self) -> EmailMessage:
        # Parsed lazily: most tests look at one message, some messages are 5 MB.
        return cast(EmailMessage, BytesParser(policy=default_policy).parsebytes(self.raw))

    def has_header(self, name: str, value: str) -> bool:
        return any(str(v).strip() == value for v in self.message.get_all(name, []))

    def metadata(self) -> dict[str, Any]:
        """Everything except the message itself, JSON-ready (this is the .json file)."""
        return {
            "n": self.n,
            "listener": self.listener,
            "mode": self.mode,
            "port": self.port,
            "peer": self.peer,
            "helo": self.helo,
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "mail_options": self.mail_options,
            "rcpt_options": self.rcpt_options,
            "auth_user": self.auth_user,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "size": len(self.raw),
            "received_at": self.received_at.isoformat(),
            "received_ts": self.received_at.timestamp(),
            "eml": self.eml_path.name,
        }

    def summary(self) -> str:
        headers = self.message
        return (
            f"#{self.n} via {self.listener}:{self.port} from {self.mail_from!r} "
            f"to {self.rcpt_tos!r} subject={headers.get('Subject')!r} "
            f"{TEST_ID_HEADER}={headers.get(TEST_ID_HEADER)!r}"
        )


@dataclass(frozen=True)
class header_is:  # noqa: N801 - used like a function: wait_for(header_is(name, value))
    """Predicate for wait_for(): the message has header `name` equal to `value`."""

    name: str
    value: str

    def __call__(self, received: Received) -> bool:
        return received.has_header(self.name, self.value)


Predicate = Callable[[Received], bool]


# --- the server -----------------------------------------------------------


@dataclass(frozen=True)
class _Listener:
    name: str
    mode: str  # "starttls", "smtps" or "plain"
    cert_file: Path | None = None
    key_file: Path | None = None
    maximum_version: ssl.TLSVersion | None = None
    # Options for tests/support/diagnosis_servers.py; the defaults are the suite's servers.
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    legacy: bool = False  # security level 0, so that TLS 1.0 and 1.1 handshakes work
    auth_before_tls: bool = False  # STARTTLS mode: AUTH offered (and taken) in clear
    auth_excluded: tuple[str, ...] = ()  # mechanisms not offered, e.g. ("PLAIN",)


def _listeners(pki: Pki) -> tuple[_Listener, ...]:
    own = (pki.cert_file, pki.key_file)
    other = (pki.other_cert_file, pki.other_key_file)
    wrong = (pki.wrong_host_cert_file, pki.wrong_host_key_file)
    return (
        _Listener("starttls", "starttls", *own),
        _Listener("smtps", "smtps", *own),
        _Listener("tls12", "smtps", *own, maximum_version=ssl.TLSVersion.TLSv1_2),
        _Listener("wrong_host", "smtps", *wrong),
        _Listener("other_ca_smtps", "smtps", *other),
        _Listener("other_ca_starttls", "starttls", *other),
        # For "TLS client against a plain port": offers neither TLS nor AUTH,
        # so it never sees a password and never accepts a message.
        _Listener("plain", "plain"),
    )


def _server_context(listener: _Listener) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if listener.legacy:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1 (legacy)
        ctx.minimum_version = listener.minimum_version
    if listener.maximum_version is not None:
        ctx.maximum_version = listener.maximum_version
    assert listener.cert_file is not None and listener.key_file is not None
    ctx.load_cert_chain(listener.cert_file, listener.key_file)
    return ctx


class _TestSMTP(SMTP):
    """aiosmtpd's SMTP, aware of implicit TLS and of its connection for shutdown."""

    def __init__(
        self,
        handler: _Handler,
        *,
        implicit_tls: bool,
        connections: set[Any],
        auth_before_tls: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, auth_require_tls=True, **kwargs)
        if implicit_tls or auth_before_tls:
            # aiosmtpd does not know the socket is already encrypted and would
            # refuse AUTH with 538. Passing auth_require_tls=False instead warns
            # (UserWarning) on every connection, which "-W error" turns into a
            # dropped connection; so flip the flag after construction.
            assert hasattr(self, "_auth_require_tls"), "aiosmtpd internals changed"
            # The same flag makes a STARTTLS listener offer AUTH before TLS on purpose.
            self._auth_require_tls = False
        self._connections = connections
        self._raw_transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Called again after STARTTLS; the first transport is the one to abort.
        if self._raw_transport is None:
            self._raw_transport = transport
            self._connections.add(transport)
            # aiosmtpd writes each EHLO line on its own; without TCP_NODELAY every line
            # after the first waits ~40 ms for the client's delayed ACK.
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._connections.discard(self._raw_transport)
        super().connection_lost(error)


class _Handler:
    """aiosmtpd handler of one listener; hands each message to the server object."""

    def __init__(self, listener: _Listener, port: int, owner: SmtpTestServer) -> None:
        self.listener = listener
        self.port = port
        self._owner = owner

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        session.host_name = hostname
        if self._owner.offer_auth:
            return responses
        return [r for r in responses if not r[4:].upper().startswith("AUTH")]

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if refusal := self._owner._sender_refusal(session, envelope):
            return refusal
        if refusal := self._owner.refused_recipients.get(address.lower()):
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._owner.data_started += 1
        while self._owner.hold_data:  # a server slow to say 250: a client dies meanwhile
            await asyncio.sleep(0.05)
        if server.transport is None or server.transport.is_closing():
            return "451 4.3.0 the client went away before the message was taken"
        n = self._owner._receive(self, server, session, envelope)
        return f"250 2.0.0 Ok: queued as {n}"


class _DropLoginDataNotice(logging.Filter):
    # aiosmtpd 1.4 itself sets the deprecated Session.login_data on every
    # successful AUTH and logs a warning about it; that is noise, not news.
    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_DROP_LOGIN_DATA_NOTICE = _DropLoginDataNotice()


def _format_peer(peer: Any) -> str:
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


class SmtpTestServer:
    """aiosmtpd on 127.0.0.1 with one listener per TLS situation the product tests.

    Ports (attributes, chosen by the OS): starttls_port, smtps_port, tls12_port,
    wrong_host_port, other_ca_smtps_port, other_ca_starttls_port, plain_port;
    `ports` maps listener name to port. Every listener except "plain" requires
    AUTH before MAIL, and refuses a sender the login does not own (`senders`) as
    postfix's reject_sender_login_mismatch does: at RCPT, with 553 5.7.1.
    """

    def __init__(
        self,
        pki: Pki,
        directory: str | os.PathLike[str],
        *,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        senders: Iterable[str] = DEFAULT_SENDERS,
        auth_required: bool = True,
        offer_auth: bool = True,
        data_size_limit: int = DATA_SIZE_LIMIT,
        idle_timeout: float = IDLE_TIMEOUT,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        keep_in_memory: bool = True,
        listeners: Callable[[Pki], Iterable[_Listener]] | None = None,
    ) -> None:
        self.pki = pki
        self.directory = Path(directory)
        self.user = user
        self.password = password
        self.senders = frozenset(s.lower() for s in senders)
        # False: AUTH is offered but MAIL is taken without it, as an open relay would.
        self.auth_required = auth_required
        # False (with auth_required False): no AUTH in the EHLO reply, mail from anyone.
        self.offer_auth = offer_auth
        self.host = HOST
        self.data_size_limit = data_size_limit
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self.keep_in_memory = keep_in_memory
        # The listeners to open (default: the suite's seven, see _listeners).
        self._listener_set = listeners or _listeners
        self.ports: dict[str, int] = {}
        # Recipient (lower case) -> the whole reply to RCPT, e.g. "550 5.1.1 ... unknown".
        self.refused_recipients: dict[str, str] = {}
        # True: a message's DATA waits (before the 250) until it is False again.
        self.hold_data = False
        self.data_started = 0
        # AUTH commands by the client's address ("127.0.0.1:PORT", as Received.peer): a
        # client that sends many messages over one connection must log in once.
        self.auth_attempts: Counter[str] = Counter()
        self._messages: list[Received] = []
        self._changed = threading.Condition()
        self._count = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: set[Any] = set()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # Ports by name, so tests read server.smtps_port rather than a dict key.
    starttls_port = property(lambda self: self.ports["starttls"])
    smtps_port = property(lambda self: self.ports["smtps"])
    tls12_port = property(lambda self: self.ports["tls12"])
    wrong_host_port = property(lambda self: self.ports["wrong_host"])
    other_ca_smtps_port = property(lambda self: self.ports["other_ca_smtps"])
    other_ca_starttls_port = property(lambda self: self.ports["other_ca_starttls"])
    plain_port = property(lambda self: self.ports["plain"])

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_file

    # -- lifecycle --

    def start(self) -> SmtpTestServer:
        if self._thread is not None:
            raise RuntimeError("SmtpTestServer already started")
        self.directory.mkdir(parents=True, exist_ok=True)
        logging.getLogger("mail.log").addFilter(_DROP_LOGIN_DATA_NOTICE)  # idempotent
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._serve, name="smtp-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"SMTP test server did not start within {START_TIMEOUT:g} s")
        if self._startup_error is not None:
            # The thread closes its loop by itself after a failed start.
            self._thread.join(START_TIMEOUT)
            self._thread = None
            raise RuntimeError("SMTP test server did not start") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            # Queued even if run_forever() has not begun yet; it stops right away then.
            loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:  # reported to start() in the caller's thread
            self._startup_error = exc
        self._ready.set()
        try:
            if self._startup_error is None:
                loop.run_forever()
            loop.run_until_complete(self._shutdown())
        finally:
            loop.close()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listener_set(self.pki):
            # Bind first so the handler knows its port before any client arrives.
            sock = socket.create_server((HOST, 0))
            port = sock.getsockname()[1]
            handler = _Handler(listener, port, self)
            ctx = None if listener.mode == "plain" else _server_context(listener)
            implicit = listener.mode == "smtps"

            def factory(handler: _Handler = handler, ctx: ssl.SSLContext | None = ctx) -> SMTP:
                return self._make_smtp(handler, ctx, loop)

            server = await loop.create_server(
                factory,
                sock=sock,
                ssl=ctx if implicit else None,
                ssl_handshake_timeout=self.handshake_timeout if implicit else None,
            )
            self._servers.append(server)
            self.ports[listener.name] = port

    def _make_smtp(
        self, handler: _Handler, ctx: ssl.SSLContext | None, loop: asyncio.AbstractEventLoop
    ) -> SMTP:
        implicit = handler.listener.mode == "smtps"
        return _TestSMTP(
            handler,
            implicit_tls=implicit,
            connections=self._connections,
            auth_before_tls=handler.listener.auth_before_tls,
            # STARTTLS inside implicit TLS would be nonsense, so no context there.
            tls_context=None if implicit else ctx,
            require_starttls=handler.listener.mode == "starttls"
            and not handler.listener.auth_before_tls,
            auth_required=self.auth_required,
            auth_exclude_mechanism=handler.listener.auth_excluded,
            authenticator=self._authenticate,
            data_size_limit=self.data_size_limit,
            decode_data=False,
            enable_SMTPUTF8=True,
            # The default (socket.getfqdn()) can wait on DNS for every connection.
            hostname="localhost",
            timeout=self.idle_timeout,
            loop=loop,
        )

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        # Server.close() leaves open connections alone; a test server must not linger.
        for transport in list(self._connections):
            transport.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        await asyncio.sleep(0)
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- SMTP callbacks (event-loop thread) --

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        with self._changed:
            self.auth_attempts[_format_peer(session.peer)] += 1
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, self.user.encode())
            and hmac.compare_digest(auth_data.password, self.password.encode())
        )
        if not ok:
            # handled=False makes aiosmtpd answer "535 5.7.8 Authentication credentials invalid".
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data.login.decode("utf-8", "replace"))

    def _sender_refusal(self, session: Session, envelope: Envelope) -> str | None:
        """Postfix's words for a sender the login does not own (smtpd_sender_login_maps
        with reject_sender_login_mismatch; smtpd_delay_reject makes it answer at RCPT)."""
        sender = envelope.mail_from or ""
        if sender in ("", "<>"):  # aiosmtpd keeps the null sender's brackets
            return None
        if not session.authenticated or sender.lower() in self.senders:
            return None
        return (
            f"553 5.7.1 <{sender}>: Sender address rejected: not owned by user {session.auth_data}"
        )

    def _receive(
        self, handler: _Handler, server: SMTP, session: Session, envelope: Envelope
    ) -> int:
        # Read from the transport, not session.ssl: that is only set after STARTTLS.
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        cipher = ssl_object.cipher() if ssl_object is not None else None
        with self._changed:
            self._count += 1
            n = self._count
        received = Received(
            n=n,
            listener=handler.listener.name,
            mode=handler.listener.mode,
            port=handler.port,
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            auth_user=session.auth_data if session.authenticated else None,
            helo=session.host_name,
            tls_version=ssl_object.version() if ssl_object is not None else None,
            cipher=cipher[0] if cipher else None,
            peer=_format_peer(session.peer),
            received_at=dt.datetime.now(dt.UTC),
            eml_path=self.directory / f"{n}.eml",
            json_path=self.directory / f"{n}.json",
            # Exactly the bytes after DATA (dot-unstuffed); aiosmtpd adds no headers here.
            raw=envelope.original_content or b"",
            mail_options=list(envelope.mail_options),
            rcpt_options=list(envelope.rcpt_options),
        )
        self._save(received)
        with self._changed:
            if self.keep_in_memory:
                self._messages.append(received)
            self._changed.notify_all()
        return n

    def _save(self, received: Received) -> None:
        received.eml_path.write_bytes(received.raw)
        # The .json appears last and atomically: a reader polling for it gets a whole message.
        tmp = received.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(received.metadata(), indent=1), encoding="utf-8")
        os.replace(tmp, received.json_path)

    # -- inspecting what arrived --

    def messages(self) -> list[Received]:
        with self._changed:
            return list(self._messages)

    def clear(self) -> None:
        """Forget messages and AUTH attempts; files stay, and numbering goes on, so none
        clash."""
        with self._changed:
            self._messages.clear()
            self.auth_attempts.clear()

    def find(self, header_name: str, value: str) -> list[Received]:
        return [m for m in self.messages() if m.has_header(header_name, value)]

    def wait_for(self, predicate_or_count: Predicate | int, timeout: float = 10.0) -> Received:
        """Wait for the first message matching a predicate, or for the n-th message.

        An int n returns messages()[n - 1] once at least n messages are there.
        """
        if not self.keep_in_memory:
            raise RuntimeError("wait_for() needs keep_in_memory=True")
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = _match(self._messages, predicate_or_count)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self._timeout_message(predicate_or_count, timeout))
                self._changed.wait(remaining)

    def _timeout_message(self, predicate_or_count: Predicate | int, timeout: float) -> str:
        wanted = (
            f"message #{predicate_or_count}"
            if isinstance(predicate_or_count, int)
            else f"message matching {predicate_or_count!r}"
        )
        held = "".join(f"\n  {m.summary()}" for m in self._messages) or " none"
        return (
            f"no {wanted} arrived at the SMTP test server ({HOST}, ports {self.ports}) "
            f"within {timeout:g} s; messages received:{held}"
        )

    def describe(self) -> dict[str, Any]:
        """What a client needs to know, JSON-ready (printed by the standalone mode)."""
        return {
            "host": HOST,
            "ports": dict(self.ports),
            "ca_file": str(self.pki.ca_file),
            "other_ca_file": str(self.pki.other_ca_file),
            "user": self.user,
            "password": self.password,
            "senders": sorted(self.senders),
            "messages_dir": str(self.directory),
            "pki_dir": str(self.pki.directory),
            "pid": os.getpid(),
        }


def _match(messages: list[Received], predicate_or_count: Predicate | int) -> Received | None:
    if isinstance(predicate_or_count, int):
        n = predicate_or_count
        return messages[n - 1] if len(messages) >= n else None
    return next((m for m in messages if predicate_or_count(m)), None)


# --- helpers for failure tests --------------------------------------------


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte, until stopped.

    Stands in for a server that hangs: clients must hit their own timeout.
    """

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def accepted(self) -> int:
        """Connections accepted so far (proves the client really connected)."""
        return len(self._clients)

    def start(self) -> SilentServer:
        self._listener = socket.create_server((HOST, 0))
        # Polling accept: closing a socket does not wake a blocked accept() on Linux.
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, name="silent-server", daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._clients.append(client)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for client in self._clients:
            client.close()
        self._clients.clear()

    def __enter__(self) -> SilentServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (free right now; another process could
    take it later, which on loopback in a test run is unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- standalone -----------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="for pki/ and received/")
    parser.add_argument("--user", default=DEFAULT_USER)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    pki = make_pki(args.dir / "pki")
    # Long runs (benchmarks) read the files; holding every message in memory would only grow.
    server = SmtpTestServer(
        pki, args.dir / "received", user=args.user, password=args.password, keep_in_memory=False
    )
    with server:
        print(json.dumps(server.describe()), flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
