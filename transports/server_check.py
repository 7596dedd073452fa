"""What an SMTP server offers, asked without sending a mail: the server check (issue 9).

One call, :func:`check_server`, connects to the account's server and reports what a
mail command would meet there: the greeting, the EHLO capabilities before and after
TLS, STARTTLS, the AUTH mechanisms, SIZE, the certificate as sent (names, issuer,
chain, expiry, whether it fits the host and whom it is trusted by), the TLS versions
the server accepts, and, if asked, whether the login works (AUTH, then QUIT; never
MAIL FROM, so nothing is ever sent). Every judgement is a :class:`Finding`; the
report is JSON (``to_dict``) and rebuilt from it (``from_dict``), so the panel stores
it and words the findings in the reader's language later.

Connections, all at once, one thread each, all within one deadline (``timeout``):

- the main one: connect, greeting, EHLO, STARTTLS, handshake, EHLO, the login, QUIT;
  the others open once it is connected, so that its handshake comes first at the
  server (they have the EHLO after TLS to catch up);
- one per TLS version (1.0, 1.1, 1.2, 1.3), pinned to it (minimum = maximum version),
  each going through greeting, EHLO and STARTTLS first in the STARTTLS mode; True when
  the handshake completes, False when the server refuses it, None when the try could
  not tell (no connection, no STARTTLS, time up);
- one per trust store, verifying the chain (not the name, which is judged apart):
  the system's CAs, and the account's CA file when it has one. A failed verification
  ends that handshake, which is why it is not the main connection's.

So the check costs one handshake and one EHLO round trip: bench/diagnosis_bench.py
measured 1.3x a bare handshake in STARTTLS and 1.6x in SMTPS (where the bare handshake
is only two round trips) at a 20 ms round trip; on loopback, where there is no round
trip to hide, the CPU of seven connections shows (about 5x on two CPUs). A server that
allows fewer than seven connections per client may refuse some tries: a refused try
says None, not False. The first check of a process also reads the system's CA bundle
(~20 ms), kept while the bundle is unchanged.

The versions are tried with the standard library's ssl, as the rest of the product
does: ``DEFAULT:@SECLEVEL=0`` lets Debian 12's OpenSSL 3.0 still speak TLS 1.0 and 1.1
(client and server; its default level 2 refuses them). Not sslyze: it brings its own
OpenSSL build (nassl), a large binary wheel for one answer the system's OpenSSL gives,
and a verdict from another OpenSSL than the mail commands use.

The chain as sent: ``SSLSocket.get_unverified_chain()`` is public from Python 3.13;
3.10 to 3.12 have it on the private ``_sslobj`` only; where neither is there, the
report holds the leaf alone (``getpeercert(binary_form=True)``). Certificates are read
with ``cryptography`` (imported when needed: ``transports`` also runs on a bare Python,
where the details are then missing and a finding says why).

The mode: given, or (``mode=None``) the port's default (465 SMTPS, else STARTTLS) put
to the test on the main connection, as ``mode_probe`` asks: a clear greeting confirms
STARTTLS; silence for ``GREETING_WAIT`` seconds and then a working TLS handshake means
implicit TLS, and a TLS handshake answered in clear means STARTTLS; the check then runs
again in the mode the server showed (``mode_source`` "detected"; "port" when the server
showed none). Not ``detect_mode`` itself: it waits ``GREETING_WAIT`` seconds on every
implicit-TLS port, which this way only a wrong guess costs. With a mode given, the other
mode is a finding with the fix.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import ipaddress
import math
import os
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from .base import Mode, TargetError, ca_file_problem, check_credentials
from .base import check_server as valid_server
from .findings import Finding, Level, worst
from .mode_probe import EHLO_NAME, GREETING_WAIT, read_reply
from .secrecy import redact
from .texts import Text, gettext_noop

TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
_PINNED = {"1.0": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}
# The order findings are reported in; every finding's check is one of these.
CHECKS = ("connect", "banner", "starttls", "tls-versions", "certificate", "auth", "size", "login")
EXPIRY_WARN_DAYS = 14
MAX_TIMEOUT = 3600.0
# How OpenSSL says that the answer to a client hello was no TLS (an SMTP greeting).
_CLEAR_TEXT = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"})
_TEXT_LIMIT = 200
_PORT_HINT = Text(
    gettext_noop(
        "mail submission is on port 587 (STARTTLS) or 465 (SMTPS); check the port, and "
        "that no firewall on the way blocks it"
    )
)


# --- the report -----------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateReport:
    """The server's certificate as sent, and how it fares."""

    subject: str | None  # the common name (CN)
    san: tuple[str, ...]  # DNS names and IP addresses
    issuer: str | None  # RFC 4514, e.g. "CN=R11,O=Let's Encrypt,C=US"
    chain: tuple[Mapping[str, str], ...]  # {"subject", "issuer"} per certificate, as sent
    not_after: str | None  # ISO 8601, UTC
    days_left: int | None  # whole days until not_after; negative once expired
    hostname_match: bool | None
    trusted: bool | None  # None: could not be checked
    trusted_by: str | None  # "system", "ca_file" or None
    verify_error: str | None  # OpenSSL's words when not trusted

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "san": list(self.san),
            "issuer": self.issuer,
            "chain": [dict(c) for c in self.chain],
            "not_after": self.not_after,
            "days_left": self.days_left,
            "hostname_match": self.hostname_match,
            "trusted": self.trusted,
            "trusted_by": self.trusted_by,
            "verify_error": self.verify_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CertificateReport:
        return cls(
            subject=data.get("subject"),
            san=tuple(data.get("san") or ()),
            issuer=data.get("issuer"),
            chain=tuple(dict(c) for c in data.get("chain") or ()),
            not_after=data.get("not_after"),
            days_left=data.get("days_left"),
            hostname_match=data.get("hostname_match"),
            trusted=data.get("trusted"),
            trusted_by=data.get("trusted_by"),
            verify_error=data.get("verify_error"),
        )


@dataclass(frozen=True)
class ServerReport:
    """Everything the check saw; None where it did not get that far."""

    host: str
    port: int
    mode: Mode
    mode_source: str  # "given", "detected" or "port"
    connect_ms: float | None
    banner: str | None
    starttls: bool | None  # offered (STARTTLS mode); None in SMTPS or when not read
    capabilities_before_tls: tuple[str, ...] | None
    capabilities_after_tls: tuple[str, ...] | None
    auth_mechanisms_before_tls: tuple[str, ...] | None
    auth_mechanisms_after_tls: tuple[str, ...] | None
    size: int | None  # SIZE in bytes, 0: announced without a limit
    flags: Mapping[str, bool] | None  # 8BITMIME, SMTPUTF8, PIPELINING
    tls_version: str | None  # negotiated on the main connection, e.g. "TLSv1.3"
    tls_versions: Mapping[str, bool | None]
    certificate: CertificateReport | None
    login: Mapping[str, Any] | None  # None: not asked for, or no AUTH reached
    findings: tuple[Finding, ...]
    duration_s: float

    @property
    def level(self) -> Level:
        return worst(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "mode": self.mode.value,
            "mode_source": self.mode_source,
            "connect_ms": self.connect_ms,
            "banner": self.banner,
            "starttls": self.starttls,
            "capabilities": {
                "before_tls": _listed(self.capabilities_before_tls),
                "after_tls": _listed(self.capabilities_after_tls),
            },
            "auth_mechanisms_before_tls": _listed(self.auth_mechanisms_before_tls),
            "auth_mechanisms_after_tls": _listed(self.auth_mechanisms_after_tls),
            "size": self.size,
            "flags": dict(self.flags) if self.flags is not None else None,
            "tls_version": self.tls_version,
            "tls_versions": dict(self.tls_versions),
            "certificate": self.certificate.to_dict() if self.certificate else None,
            "login": dict(self.login) if self.login is not None else None,
            "findings": [f.to_dict() for f in self.findings],
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerReport:
        capabilities = data.get("capabilities") or {}
        certificate = data.get("certificate")
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            mode=Mode(data["mode"]),
            mode_source=str(data.get("mode_source") or "given"),
            connect_ms=data.get("connect_ms"),
            banner=data.get("banner"),
            starttls=data.get("starttls"),
            capabilities_before_tls=_tupled(capabilities.get("before_tls")),
            capabilities_after_tls=_tupled(capabilities.get("after_tls")),
            auth_mechanisms_before_tls=_tupled(data.get("auth_mechanisms_before_tls")),
            auth_mechanisms_after_tls=_tupled(data.get("auth_mechanisms_after_tls")),
            size=data.get("size"),
            flags=data.get("flags"),
            tls_version=data.get("tls_version"),
            tls_versions={v: (data.get("tls_versions") or {}).get(v) for v in TLS_VERSIONS},
            certificate=CertificateReport.from_dict(certificate) if certificate else None,
            login=data.get("login"),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings") or ()),
            duration_s=float(data.get("duration_s") or 0.0),
        )


def _listed(values: Sequence[str] | None) -> list[str] | None:
    return list(values) if values is not None else None


def _tupled(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None


# --- the check ------------------------------------------------------------------------


def check_server(
    host: str,
    port: int,
    *,
    mode: Mode | str | None = None,
    ca_file: str | None = None,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
) -> ServerReport:
    """What ``host``:``port`` offers (see the module). Bad values raise TargetError (a
    ValueError) before any connection; a network problem never raises, it is a finding.
    ``timeout`` bounds the whole check (twice, at most, when the mode is detected)."""
    started = time.monotonic()
    host, guess = valid_server(host, port, mode)
    if not 0 < timeout <= MAX_TIMEOUT:
        raise TargetError(Text(gettext_noop("timeout must be between 0 and 3600 seconds")))
    if bool(user) != bool(password):
        raise TargetError(Text(gettext_noop("the login needs both the user and the password")))
    if user and password:
        check_credentials(user, password)
    ca_problem = ca_file_problem(ca_file) if ca_file else None
    clock = _Clock(timeout)
    target = _Target(host, port, guess, clock, user or None, password or None)
    run = _run(target, None if ca_problem else ca_file)
    source = "given"
    if mode is None:
        source = "detected" if run.seen.confirmed or run.seen.shown_mode else "port"
        if run.seen.shown_mode is not None:
            target = _Target(
                host, port, run.seen.shown_mode, _Clock(timeout), target.user, target.password
            )
            run = _run(target, None if ca_problem else ca_file)
    return _report(target, run, source, ca_file, ca_problem, time.monotonic() - started)


class _Clock:
    """One deadline: every connect, read and handshake gets what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the check's time is up")
        return left if cap is None else min(left, cap)


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    mode: Mode
    clock: _Clock
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def sni(self) -> str | None:
        # An IP literal must not go into SNI (RFC 6066).
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return self.host
        return None

    @property
    def where(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port}

    @property
    def seconds(self) -> str:
        """The check's timeout as the sentences say it."""
        return f"{self.clock.seconds:g}"


class _Wire:
    """One connection: SMTP lines in and out, TLS over it, each step within the deadline.
    ``abort()`` (from another thread) ends whatever it waits for at once."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock: socket.socket = sock
        self.clock = clock
        self.reader = sock.makefile("rb")
        self._lock = threading.Lock()
        self._aborted = False

    def reply(self, wait: float | None = None) -> list[bytes]:
        self.sock.settimeout(self.clock.left(wait))
        return read_reply(self.reader)

    def command(self, line: str) -> list[bytes]:
        self.sock.settimeout(self.clock.left())
        self.sock.sendall(line.encode("ascii") + b"\r\n")
        return self.reply()

    def start_tls(self, context: ssl.SSLContext, sni: str | None) -> ssl.SSLSocket:
        """The TLS handshake on this connection (after STARTTLS's 220, or at once)."""
        self.reader.close()
        self.sock.settimeout(self.clock.left())
        tls = context.wrap_socket(self.sock, server_hostname=sni, do_handshake_on_connect=False)
        with self._lock:
            self.sock, aborted = tls, self._aborted
        if aborted:
            _shut(tls)
        tls.do_handshake()
        self.reader = tls.makefile("rb")
        return tls

    def quit(self) -> None:
        with suppress(OSError, ValueError):
            self.sock.settimeout(min(self.clock.seconds, 1.0))
            self.sock.sendall(b"QUIT\r\n")

    def abort(self) -> None:
        with self._lock:
            self._aborted, sock = True, self.sock
        _shut(sock)

    def close(self) -> None:
        with suppress(OSError):
            self.reader.close()
        with suppress(OSError):
            self.sock.close()


def _shut(sock: socket.socket) -> None:
    # socket's own shutdown, also for an SSLSocket: it wakes a read blocked in another
    # thread and leaves the TLS object to that thread.
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Connections:
    """The connections of one check. The others open once the main one is connected (or
    has failed to), so that its handshake is not queued behind theirs at the server: they
    have a round trip to spare, the EHLO after TLS. And once the main one learns that the
    server speaks the other mode or nothing at all, it ends the others' waits."""

    def __init__(self, target: _Target) -> None:
        self.target = target
        self.cancelled = False
        self.main_connected = threading.Event()
        self._open: set[_Wire] = set()
        self._lock = threading.Lock()

    def open(self, *, main: bool = False) -> _Wire:
        t = self.target
        if not main and not self.main_connected.wait(t.clock.left()):
            raise TimeoutError("the main connection did not get through")
        wire = _Wire(socket.create_connection((t.host, t.port), timeout=t.clock.left()), t.clock)
        with self._lock:
            self._open.add(wire)
            cancelled = self.cancelled
        if cancelled:
            wire.abort()
        return wire

    def close(self, wire: _Wire) -> None:
        with self._lock:
            self._open.discard(wire)
        wire.close()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            wires = list(self._open)
        for wire in wires:
            wire.abort()


class _Stop(Exception):
    """The main dialogue cannot go on: ``finding`` says why. ``mode``: the mode the server
    showed instead; ``cancel``: the other connections cannot learn anything either."""

    def __init__(self, finding: Finding, *, mode: Mode | None = None, cancel: bool = False):
        super().__init__(str(finding.text))
        self.finding, self.mode, self.cancel = finding, mode, cancel


def _fail(check: str, msgid: str, params: Mapping[str, Any] | None = None, **kw: Any) -> _Stop:
    return _Stop(Finding(check, Level.FAIL, Text(msgid, params or {})), **kw)


@dataclass
class _Seen:
    """What the main connection saw, filled in as the dialogue goes."""

    step: str = "connect"
    connect_ms: float | None = None
    banner: str | None = None
    starttls: bool | None = None
    before_tls: list[str] | None = None
    after_tls: list[str] | None = None
    tls_version: str | None = None
    chain: list[bytes] = field(default_factory=list)
    login: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    shown_mode: Mode | None = None  # the server spoke the other mode
    confirmed: bool = False  # the server behaved as the mode expects
    cancelled: bool = False


@dataclass
class _Run:
    seen: _Seen
    versions: dict[str, bool | None]
    trust: dict[str, tuple[bool | None, str | None]]  # store -> (verified, OpenSSL's words)


def _run(t: _Target, ca_file: str | None) -> _Run:
    """The main dialogue in this thread, the version tries and the trust checks beside it."""
    connections = _Connections(t)
    tries = _version_contexts()
    stores = {"system": _system_context()}
    if ca_file:
        # Checked before the check (ca_file_problem); a file changed since is no store.
        with suppress(OSError, ssl.SSLError):
            stores["ca_file"] = _ca_file_context(ca_file)
    workers = len(tries) + len(stores)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="server-check") as pool:
        versions = {
            v: pool.submit(_accepts, connections, ctx) if ctx else None for v, ctx in tries.items()
        }
        trust = {name: pool.submit(_verifies, connections, ctx) for name, ctx in stores.items()}
        seen = _converse(t, connections)
        found = _Run(
            seen,
            {v: future.result() if future else None for v, future in versions.items()},
            {name: future.result() for name, future in trust.items()},
        )
    if seen.cancelled:
        found.versions = dict.fromkeys(TLS_VERSIONS)
        found.trust = dict.fromkeys(trust, (None, None))
    return found


# --- the main connection --------------------------------------------------------------

# What the main dialogue says when it cannot go on.
REFUSED = gettext_noop(
    "%(host)s:%(port)s refused the connection: no server listens on that port, or a "
    "firewall rejects it; %(hint)s"
)
NO_ANSWER = gettext_noop(
    "no answer from %(host)s:%(port)s within %(seconds)s s: a firewall may drop the packets "
    "(outgoing ports 465 and 587 are often blocked), or the host is wrong; %(hint)s"
)
UNRESOLVED = gettext_noop("the host name %(host)s could not be resolved: %(error)s")
NO_CONNECTION = gettext_noop("no connection to %(host)s:%(port)s: %(error)s; %(hint)s")
NO_GREETING = gettext_noop(
    "%(host)s:%(port)s sent no SMTP greeting: it closed the connection or speaks another protocol"
)
NOT_220 = gettext_noop(
    "%(host)s:%(port)s greets with %(banner)s instead of 220: it takes no mail from this client now"
)
SILENT = gettext_noop(
    "%(host)s:%(port)s accepted the connection but sent no greeting, and did not answer a "
    "TLS handshake either, within %(seconds)s s"
)
SILENT_NO_TLS = gettext_noop(
    "%(host)s:%(port)s sent no greeting within %(wait)s s, and no TLS handshake either (%(error)s)"
)
IMPLICIT_TLS_PORT = gettext_noop(
    "%(host)s:%(port)s sends no greeting in clear but answers a TLS handshake: it is an "
    "implicit-TLS port, set the mode to smtps"
)
STARTTLS_PORT = gettext_noop(
    "%(host)s:%(port)s answers the TLS handshake in clear: it is a STARTTLS port, set the "
    "mode to starttls"
)
EHLO_REFUSED = gettext_noop("%(host)s:%(port)s refused EHLO: %(reply)s")
NO_STARTTLS = gettext_noop(
    "the server does not offer STARTTLS: is it an implicit-TLS port? try smtps"
)
STARTTLS_REFUSED = gettext_noop("the server refused STARTTLS: %(reply)s")
HANDSHAKE_FAILED = gettext_noop("the TLS handshake failed: %(error)s")
HANDSHAKE_TIMEOUT = gettext_noop(
    "%(host)s:%(port)s did not complete the TLS handshake within %(seconds)s s"
)
STOPPED_ANSWERING = gettext_noop("the server stopped answering within %(seconds)s s")
BROKE_OFF = gettext_noop("the server broke off the connection: %(error)s")


def _converse(t: _Target, connections: _Connections) -> _Seen:
    seen = _Seen()
    wire = None
    try:
        wire = _connect(t, connections, seen)
        wire = _greeted(t, connections, wire, seen)
        if t.mode is Mode.STARTTLS:
            _upgrade(t, wire, seen)
        seen.step = "auth"
        reply = wire.command(f"EHLO {EHLO_NAME}")
        if _code(reply) == 250:
            seen.after_tls = _capabilities(reply)
        if t.user and t.password and seen.after_tls is not None:
            seen.step = "login"
            seen.login = _login(wire, t, auth_mechanisms(seen.after_tls))
        wire.quit()
    except _Stop as stop:
        seen.findings.append(stop.finding)
        seen.shown_mode = stop.mode
        if stop.cancel:
            seen.cancelled = True
            connections.cancel()
    except (OSError, ValueError) as exc:
        seen.findings.append(_broken(seen.step, exc, t))
    finally:
        if wire is not None:
            connections.close(wire)
    return seen


def _connect(t: _Target, connections: _Connections, seen: _Seen) -> _Wire:
    start = time.perf_counter()
    try:
        wire = connections.open(main=True)
    except OSError as exc:
        raise _Stop(_connect_failure(t, exc)) from None
    finally:
        connections.main_connected.set()
    seen.connect_ms = round((time.perf_counter() - start) * 1000, 1)
    return wire


def _connect_failure(t: _Target, exc: OSError) -> Finding:
    error = exc.strerror or str(exc) or type(exc).__name__
    params = {**t.where, "error": error, "hint": _PORT_HINT, "seconds": t.seconds}
    if isinstance(exc, ConnectionRefusedError):
        msgid = REFUSED
    elif isinstance(exc, TimeoutError):
        msgid = NO_ANSWER
    elif isinstance(exc, socket.gaierror):
        msgid = UNRESOLVED
    else:
        msgid = NO_CONNECTION
    return Finding("connect", Level.FAIL, Text(msgid, params), {"error": error})


def _greeted(t: _Target, connections: _Connections, wire: _Wire, seen: _Seen) -> _Wire:
    """The connection once the server has greeted with 220 (inside TLS for SMTPS)."""
    seen.step = "banner"
    if t.mode is Mode.SMTPS:
        _handshake(t, wire, seen, "connect", first=True)
        seen.confirmed = True
        reply = wire.reply()
    else:
        wire, reply = _clear_greeting(t, connections, wire)
        seen.confirmed = bool(reply)
    if not reply:
        raise _fail("banner", NO_GREETING, t.where)
    seen.banner = _text(reply[0])
    if _code(reply) != 220:
        raise _fail("banner", NOT_220, {**t.where, "banner": seen.banner})
    return wire


def _clear_greeting(
    t: _Target, connections: _Connections, wire: _Wire
) -> tuple[_Wire, list[bytes]]:
    """The greeting in clear. A server silent for GREETING_WAIT seconds is asked for TLS,
    as mode_probe does: a handshake that works means implicit TLS; one answered in clear
    means a server slow to greet, whose greeting is then awaited on a new connection."""
    try:
        return wire, wire.reply(GREETING_WAIT)
    except TimeoutError:
        pass
    try:
        wire.start_tls(_unverified_context(), t.sni)
    except ssl.SSLError as exc:
        if exc.reason not in _CLEAR_TEXT:
            params = {**t.where, "wait": f"{GREETING_WAIT:g}", "error": _ssl_words(exc)}
            raise _fail("banner", SILENT_NO_TLS, params, cancel=True) from None
        connections.close(wire)
        wire = connections.open(main=True)
        return wire, wire.reply()
    except TimeoutError:
        raise _fail("banner", SILENT, {**t.where, "seconds": t.seconds}, cancel=True) from None
    raise _fail("banner", IMPLICIT_TLS_PORT, t.where, mode=Mode.SMTPS, cancel=True)


def _upgrade(t: _Target, wire: _Wire, seen: _Seen) -> None:
    """EHLO, STARTTLS and the handshake."""
    seen.step = "starttls"
    reply = wire.command(f"EHLO {EHLO_NAME}")
    if _code(reply) != 250:
        raise _fail("banner", EHLO_REFUSED, {**t.where, "reply": _words(reply)})
    seen.before_tls = _capabilities(reply)
    seen.starttls = "STARTTLS" in _keywords(seen.before_tls)
    if not seen.starttls:
        raise _fail("starttls", NO_STARTTLS)
    reply = wire.command("STARTTLS")
    if _code(reply) != 220:
        raise _fail("starttls", STARTTLS_REFUSED, {"reply": _words(reply)})
    _handshake(t, wire, seen, "starttls")


def _handshake(t: _Target, wire: _Wire, seen: _Seen, check: str, *, first: bool = False) -> None:
    """TLS up on the main connection, the certificate read. ``first``: SMTPS, where a
    clear answer means the port speaks STARTTLS."""
    try:
        tls = wire.start_tls(_unverified_context(), t.sni)
    except ssl.SSLError as exc:
        if first and exc.reason in _CLEAR_TEXT:
            raise _fail("banner", STARTTLS_PORT, t.where, mode=Mode.STARTTLS, cancel=True) from None
        raise _fail(check, HANDSHAKE_FAILED, {"error": _ssl_words(exc)}) from None
    except TimeoutError:
        params = {**t.where, "seconds": t.seconds}
        raise _fail(check, HANDSHAKE_TIMEOUT, params, cancel=first) from None
    seen.tls_version = tls.version()
    seen.chain = _chain(tls)


def _chain(tls: ssl.SSLSocket) -> list[bytes]:
    """The certificates as the server sent them, leaf first, in DER (see the module)."""
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    try:
        chain = getter() if getter is not None else None
    except (AttributeError, ValueError, ssl.SSLError):
        chain = None
    if chain:
        # 3.13 hands out DER; the private method of 3.10-3.12 certificate objects (PEM).
        return [c if isinstance(c, bytes) else ssl.PEM_cert_to_DER_cert(c.public_bytes())
                for c in chain]  # fmt: skip
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _login(wire: _Wire, t: _Target, mechanisms: Sequence[str]) -> dict[str, Any]:
    """AUTH PLAIN (or LOGIN, when only that is offered); the server's words without the
    secret, whatever it echoes."""
    assert t.user is not None and t.password is not None
    user, password = t.user, t.password
    if "PLAIN" in mechanisms:
        mechanism = "PLAIN"
        secret = _b64(f"\0{user}\0{password}")
        reply = wire.command(f"AUTH PLAIN {secret}")
        if _code(reply) == 334:  # no initial response taken: the same, asked for
            reply = wire.command(secret)
    elif "LOGIN" in mechanisms:
        mechanism = "LOGIN"
        reply = wire.command("AUTH LOGIN")
        for value in (user, password):
            if _code(reply) != 334:
                break
            reply = wire.command(_b64(value))
    else:
        return {"tried": False, "ok": False, "code": None, "reply": "", "mechanism": None}
    code = _code(reply)
    words = redact(_words(reply), user, password)
    return {"tried": True, "ok": code == 235, "code": code, "reply": words, "mechanism": mechanism}


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def _broken(step: str, exc: Exception, t: _Target) -> Finding:
    """The connection failed in the middle of ``step`` (reported as that check)."""
    if isinstance(exc, TimeoutError):
        text = Text(STOPPED_ANSWERING, {"seconds": t.seconds})
    else:
        error = _ssl_words(exc) if isinstance(exc, ssl.SSLError) else str(exc) or type(exc).__name__
        text = Text(BROKE_OFF, {"error": error})
    return Finding(step, Level.FAIL, text)


# --- the other connections ------------------------------------------------------------


def _ready_for_tls(connections: _Connections) -> _Wire | None:
    """A connection where the TLS handshake is next (greeted, EHLO and STARTTLS said, in
    the STARTTLS mode), or None."""
    try:
        wire = connections.open()
    except OSError:
        return None
    try:
        if connections.target.mode is Mode.SMTPS or _starttls_said(wire):
            return wire
    except (OSError, ValueError):
        pass
    connections.close(wire)
    return None


def _starttls_said(wire: _Wire) -> bool:
    return (
        _code(wire.reply()) == 220
        and _code(wire.command(f"EHLO {EHLO_NAME}")) == 250
        and _code(wire.command("STARTTLS")) == 220
    )


def _accepts(connections: _Connections, context: ssl.SSLContext) -> bool | None:
    """Whether the server completes a handshake pinned to one TLS version."""
    wire = _ready_for_tls(connections)
    if wire is None:
        return None
    try:
        wire.start_tls(context, connections.target.sni)
        return True
    except TimeoutError:
        return None
    except ssl.SSLError as exc:
        # No TLS at all, or a version this Python's OpenSSL cannot offer: no answer.
        return None if exc.reason in _CLEAR_TEXT | {"NO_PROTOCOLS_AVAILABLE"} else False
    except OSError:
        return False  # reset in the middle of the hello: refused
    finally:
        wire.quit()
        connections.close(wire)


def _verifies(connections: _Connections, context: ssl.SSLContext) -> tuple[bool | None, str | None]:
    """Whether the chain verifies against ``context``'s CAs: (True, None), (False,
    OpenSSL's words) or (None, None) when the handshake did not get that far."""
    wire = _ready_for_tls(connections)
    if wire is None:
        return None, None
    try:
        wire.start_tls(context, connections.target.sni)
        return True, None
    except ssl.SSLCertVerificationError as exc:
        return False, str(exc.verify_message or exc.reason or exc)
    except OSError:
        return None, None
    finally:
        wire.quit()
        connections.close(wire)


# --- TLS contexts ---------------------------------------------------------------------


def _new_unverified_context() -> ssl.SSLContext:
    """For reading what the server sends: trust is judged on connections of their own."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# The contexts without a trust store are made once: each costs ~0.2 ms of CPU before the
# first packet, and is only read afterwards (a client keeps no TLS sessions here).
_unverified_context = functools.cache(_new_unverified_context)


@functools.cache
def _version_contexts() -> dict[str, ssl.SSLContext | None]:
    """One context per TLS version, pinned to it, at security level 0 (else OpenSSL 3
    does not offer 1.0 and 1.1); None where this Python's OpenSSL cannot speak it."""
    contexts: dict[str, ssl.SSLContext | None] = {}
    # Made here, in one thread: catch_warnings changes the process's warning filters.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1 and 1.1
        for version, name in _PINNED.items():
            pinned = getattr(ssl.TLSVersion, name)
            context = _new_unverified_context()
            try:
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
                context.minimum_version = pinned
                context.maximum_version = pinned
            except (ValueError, ssl.SSLError):
                contexts[version] = None
            else:
                contexts[version] = context
    return contexts


def _verifying_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the name is judged apart, from the certificate
    return context


def _ca_file_context(ca_file: str) -> ssl.SSLContext:
    context = _verifying_context()
    context.load_verify_locations(cafile=ca_file)
    return context


_system: dict[str, Any] = {}
_system_lock = threading.Lock()
SYSTEM_STORE_RECHECK = 60.0  # seconds between looks at whether the CA bundle changed


def _system_context() -> ssl.SSLContext:
    """A context with the system's CAs, kept while the CA bundle is unchanged: reading
    it costs ~20 ms, more than a handshake on loopback."""
    with _system_lock:
        if time.monotonic() - _system.get("checked", -math.inf) > SYSTEM_STORE_RECHECK:
            paths = ssl.get_default_verify_paths()
            key = (
                os.environ.get(paths.openssl_cafile_env),
                os.environ.get(paths.openssl_capath_env),
                *(_mtime(p) for p in (paths.cafile, paths.capath)),
            )
            if _system.get("key") != key:
                context = _verifying_context()
                context.load_default_certs()
                _system.update(key=key, context=context)
            _system["checked"] = time.monotonic()
        return _system["context"]


def _mtime(path: str | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


# --- reading replies ------------------------------------------------------------------


def _code(reply: list[bytes]) -> int | None:
    return int(reply[-1][:3]) if reply else None


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return "".join(c for c in text if c.isprintable()).strip()[:_TEXT_LIMIT]


def _words(reply: list[bytes]) -> str:
    """A reply as one line: its code and text (all lines)."""
    if not reply:
        return "(no reply)"
    return _text(reply[0][:4] + b" ".join(line[4:] for line in reply))


def _capabilities(reply: list[bytes]) -> list[str]:
    """The EHLO keywords (every line after the first, which names the server)."""
    return [text for line in reply[1:] if (text := _text(line[4:]))]


def _keywords(capabilities: Sequence[str]) -> set[str]:
    return {c.split()[0].upper() for c in capabilities if c.split()}


def auth_mechanisms(capabilities: Sequence[str] | None) -> list[str]:
    """The mechanisms of ``AUTH ...`` (and the old ``AUTH=...``), in order, once each."""
    found: list[str] = []
    for capability in capabilities or ():
        upper = capability.upper()
        if upper.startswith(("AUTH ", "AUTH=")):
            found += [m for m in upper[5:].split() if m not in found]
    return found


def _size(capabilities: Sequence[str] | None) -> int | None:
    for capability in capabilities or ():
        parts = capability.split()
        if parts[0].upper() == "SIZE":
            return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return None


def _ssl_words(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc).replace("_", " ").lower()


# --- the certificate ------------------------------------------------------------------


def hostname_matches(
    host: str, dns_names: Sequence[str], addresses: Sequence[str], common_name: str | None
) -> bool:
    """Whether a certificate with these names is one for ``host`` (RFC 6125): an address
    against the IP entries; a name against the DNS entries (a ``*`` as the whole first
    label matches one label), or the common name when there are none, as OpenSSL does."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names = list(dns_names) or ([common_name] if common_name else [])
        return any(_name_matches(host, name) for name in names)
    return any(_same_address(address, entry) for entry in addresses)


def _name_matches(host: str, pattern: str) -> bool:
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if not pattern.startswith("*."):
        return "*" not in pattern and pattern == host
    suffix = pattern[2:]
    label, _, rest = host.partition(".")
    return bool(label) and "." in suffix and "*" not in suffix and rest == suffix


def _same_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        return ipaddress.ip_address(entry) == address
    except ValueError:
        return False


def _certificate(
    chain: list[bytes], host: str, trust: Mapping[str, tuple[bool | None, str | None]]
) -> CertificateReport | None:
    if not chain:
        return None
    trusted, trusted_by, verify_error = _trust(trust)
    unread = CertificateReport(None, (), None, (), None, None, None, trusted, trusted_by,
                               verify_error)  # fmt: skip
    try:
        from cryptography import x509
    except ImportError:
        return unread
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain]
        return _described(certs, host, trusted, trusted_by, verify_error)
    except ValueError:
        return unread


def _described(
    certs: list[Any],
    host: str,
    trusted: bool | None,
    trusted_by: str | None,
    verify_error: str | None,
) -> CertificateReport:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    leaf = certs[0]
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    not_after = leaf.not_valid_after_utc
    left = (not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    return CertificateReport(
        subject=common_name,
        san=(*dns, *ips),
        issuer=leaf.issuer.rfc4514_string(),
        chain=tuple(
            {"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string()}
            for c in certs
        ),
        not_after=not_after.isoformat(),
        days_left=math.floor(left),
        hostname_match=hostname_matches(host, dns, ips, common_name),
        trusted=trusted,
        trusted_by=trusted_by,
        verify_error=verify_error,
    )


def _trust(
    trust: Mapping[str, tuple[bool | None, str | None]],
) -> tuple[bool | None, str | None, str | None]:
    """(trusted, by which store, OpenSSL's words): the system's CAs first, then the CA file."""
    system, system_error = trust.get("system", (None, None))
    by_file, file_error = trust.get("ca_file", (None, None))
    if system:
        return True, "system", None
    if by_file:
        return True, "ca_file", None
    if system is None and by_file is None:
        return None, None, None
    return False, None, file_error if by_file is False else system_error


# --- the findings ---------------------------------------------------------------------

CONNECTED = gettext_noop("connected to %(host)s:%(port)s in %(ms)s ms")
GREETS = gettext_noop("the server greets: %(banner)s")
TLS_UP = gettext_noop("the server offers STARTTLS, and TLS is up (%(version)s)")
NO_MODERN_TLS = gettext_noop(
    "the server accepts neither TLS 1.2 nor TLS 1.3 (accepted: %(accepted)s): current mail "
    "commands cannot connect"
)
LEGACY_TLS = gettext_noop(
    "the server still accepts %(legacy)s (accepted: %(accepted)s): outdated and unsafe, "
    "they should be switched off"
)
MODERN_TLS = gettext_noop("the server accepts %(accepted)s")
NO_TLS13 = gettext_noop(
    "the server accepts TLS 1.2 but not TLS 1.3: fine for now, though TLS 1.3 is faster and safer"
)
UNREAD_CERTIFICATE = gettext_noop(
    "the certificate's details could not be read (is the Python package cryptography installed?)"
)
WRONG_NAME = gettext_noop(
    "the certificate is for %(names)s, not for %(host)s: use a host name it names, or ask "
    "the provider for the right one"
)
TRUSTED_BY_SYSTEM = gettext_noop(
    "the certificate is trusted by the system's CAs (issued by %(issuer)s)"
)
TRUSTED_BY_CA_FILE = gettext_noop(
    "the certificate is trusted through the account's CA file %(path)s, not by the "
    "system's CAs (issued by %(issuer)s)"
)
TRUST_UNKNOWN = gettext_noop("whether the certificate is trusted could not be checked")
UNTRUSTED = gettext_noop(
    "the certificate is not trusted (%(error)s); it is issued by %(issuer)s: set the "
    "account's CA file to the issuer's certificate"
)
EXPIRED = gettext_noop("the certificate expired on %(date)s")
EXPIRES_SOON = gettext_noop(
    "the certificate expires in %(days)s days (%(date)s): it must be renewed soon"
)
EXPIRES_TODAY = gettext_noop(
    "the certificate expires within a day (%(date)s): it must be renewed at once"
)
VALID_UNTIL = gettext_noop("the certificate is valid until %(date)s")
AUTH_BEFORE_TLS = gettext_noop(
    "the server offers AUTH (%(mechanisms)s) before STARTTLS: a client that does not insist "
    "on TLS sends the password in clear"
)
NO_AUTH = gettext_noop("the server offers no AUTH after TLS: no login is possible on this port")
AUTH_OFFERED = gettext_noop("the server offers AUTH after TLS: %(mechanisms)s")
NO_SIZE = gettext_noop("the server announces no size limit (no SIZE)")
SIZE_UNLIMITED = gettext_noop("the server announces SIZE without a fixed limit")
SIZE_LIMIT = gettext_noop("the server takes messages up to %(mb)s MB (SIZE %(size)s)")
LOGIN_OK = gettext_noop("the server accepted the login as %(user)s")
LOGIN_REFUSED = gettext_noop("the server refused the login as %(user)s: %(reply)s")
LOGIN_NOT_TRIED = gettext_noop(
    "the login was not tried: the server offers neither PLAIN nor LOGIN (offered: %(mechanisms)s)"
)


def _report(t: _Target, run: _Run, source: str, ca_file: str | None, ca_problem: Text | None,
            duration: float) -> ServerReport:  # fmt: skip
    seen = run.seen
    certificate = _certificate(seen.chain, t.host, run.trust)
    judged = [*seen.findings]
    for judge in _JUDGES:
        judged += judge(t, run, certificate, ca_file, ca_problem)
    judged.sort(key=lambda f: CHECKS.index(f.check))
    capabilities = _capabilities_seen(seen)
    keywords = _keywords(capabilities or ())
    return ServerReport(
        host=t.host,
        port=t.port,
        mode=t.mode,
        mode_source=source,
        connect_ms=seen.connect_ms,
        banner=seen.banner,
        starttls=seen.starttls,
        capabilities_before_tls=_tupled(seen.before_tls),
        capabilities_after_tls=_tupled(seen.after_tls),
        auth_mechanisms_before_tls=_mechanisms_or_none(seen.before_tls),
        auth_mechanisms_after_tls=_mechanisms_or_none(seen.after_tls),
        size=_size(capabilities),
        flags=None if capabilities is None else {f: f in keywords for f in _FLAGS},
        tls_version=seen.tls_version,
        tls_versions=run.versions,
        certificate=certificate,
        login=seen.login,
        findings=tuple(judged),
        duration_s=round(duration, 3),
    )


_FLAGS = ("8BITMIME", "SMTPUTF8", "PIPELINING")


def _capabilities_seen(seen: _Seen) -> list[str] | None:
    """The capabilities that count: after TLS, else (no TLS) before it."""
    return seen.after_tls if seen.after_tls is not None else seen.before_tls


def _mechanisms_or_none(capabilities: list[str] | None) -> tuple[str, ...] | None:
    return None if capabilities is None else tuple(auth_mechanisms(capabilities))


def _say(check: str, level: Level, msgid: str, params: Mapping[str, Any] | None = None,
         details: Mapping[str, Any] | None = None) -> Finding:  # fmt: skip
    # A value the sentence does not use may be None; a Text's parameters never are.
    given = {name: value for name, value in (params or {}).items() if value is not None}
    return Finding(check, level, Text(msgid, given), details or {})


def _judge_dialogue(t: _Target, run: _Run, *_: Any) -> list[Finding]:
    """The passes of the steps the main connection got through (it said its failures)."""
    seen, found = run.seen, []
    if seen.connect_ms is not None:
        found.append(_say("connect", Level.PASS, CONNECTED, {**t.where, "ms": seen.connect_ms}))
    if seen.banner and not any(f.check == "banner" for f in seen.findings):
        found.append(_say("banner", Level.PASS, GREETS, {"banner": seen.banner}))
    if t.mode is Mode.STARTTLS and seen.tls_version:
        found.append(_say("starttls", Level.PASS, TLS_UP, {"version": seen.tls_version}))
    return found


def _judge_versions(t: _Target, run: _Run, *_: Any) -> list[Finding]:
    versions = run.versions
    if all(v is None for v in versions.values()):
        return []
    legacy = [f"TLS {v}" for v in ("1.0", "1.1") if versions[v]]
    params = {
        "accepted": ", ".join(f"TLS {v}" for v in TLS_VERSIONS if versions[v]) or "-",
        "legacy": " and ".join(legacy),
    }
    if not versions["1.2"] and not versions["1.3"]:
        level, msgid = Level.FAIL, NO_MODERN_TLS
    elif legacy:
        level, msgid = Level.WARN, LEGACY_TLS
    else:
        level, msgid = Level.PASS, MODERN_TLS if versions["1.3"] else NO_TLS13
    return [_say("tls-versions", level, msgid, params, {"tls_versions": dict(versions)})]


def _judge_certificate(t: _Target, run: _Run, cert: CertificateReport | None,
                       ca_file: str | None, ca_problem: Text | None) -> list[Finding]:  # fmt: skip
    found = [Finding("certificate", Level.FAIL, ca_problem)] if ca_problem else []
    if cert is None:
        return found
    if cert.days_left is None:
        found.append(_say("certificate", Level.WARN, UNREAD_CERTIFICATE))
    found += _trust_findings(cert, ca_file)
    if cert.hostname_match is False:
        names = ", ".join(cert.san) or cert.subject or "-"
        found.append(_say("certificate", Level.FAIL, WRONG_NAME, {"names": names, "host": t.host},
                          {"san": list(cert.san), "subject": cert.subject}))  # fmt: skip
    return found + _expiry_findings(cert)


def _trust_findings(cert: CertificateReport, ca_file: str | None) -> list[Finding]:
    if cert.trusted_by == "system":
        level, msgid = Level.PASS, TRUSTED_BY_SYSTEM
    elif cert.trusted_by == "ca_file":
        level, msgid = Level.PASS, TRUSTED_BY_CA_FILE
    elif cert.trusted is None:
        level, msgid = Level.WARN, TRUST_UNKNOWN
    elif _expired(cert) and "expired" in str(cert.verify_error):
        return []  # the expiry is the finding, and the CA file no remedy
    else:
        level, msgid = Level.FAIL, UNTRUSTED
    params = {"issuer": cert.issuer or "-", "path": ca_file or "", "error": cert.verify_error}
    details = {"trusted_by": cert.trusted_by, "verify_error": cert.verify_error}
    return [_say("certificate", level, msgid, params, details)]


def _expired(cert: CertificateReport) -> bool:
    return cert.days_left is not None and cert.days_left < 0


def _expiry_findings(cert: CertificateReport) -> list[Finding]:
    if cert.days_left is None:
        return []
    if _expired(cert):
        level, msgid = Level.FAIL, EXPIRED
    elif cert.days_left < EXPIRY_WARN_DAYS:
        level, msgid = Level.WARN, EXPIRES_SOON if cert.days_left else EXPIRES_TODAY
    else:
        level, msgid = Level.PASS, VALID_UNTIL
    params = {"date": (cert.not_after or "")[:10], "days": cert.days_left}
    details = {"not_after": cert.not_after, "days_left": cert.days_left}
    return [_say("certificate", level, msgid, params, details)]


def _judge_auth(t: _Target, run: _Run, *_: Any) -> list[Finding]:
    seen, found = run.seen, []
    if early := auth_mechanisms(seen.before_tls):
        params = {"mechanisms": " ".join(early)}
        found.append(_say("auth", Level.WARN, AUTH_BEFORE_TLS, params))
    if seen.after_tls is None:
        return found
    if late := auth_mechanisms(seen.after_tls):
        found.append(_say("auth", Level.PASS, AUTH_OFFERED, {"mechanisms": " ".join(late)}))
    else:
        found.append(_say("auth", Level.FAIL, NO_AUTH))
    return found


def _judge_size(t: _Target, run: _Run, *_: Any) -> list[Finding]:
    capabilities = _capabilities_seen(run.seen)
    if capabilities is None:
        return []
    size = _size(capabilities)
    if size is None:
        return [_say("size", Level.PASS, NO_SIZE)]
    if size == 0:
        return [_say("size", Level.PASS, SIZE_UNLIMITED)]
    params = {"mb": f"{size / 1_000_000:.1f}", "size": size}
    return [_say("size", Level.PASS, SIZE_LIMIT, params, {"size": size})]


def _judge_login(t: _Target, run: _Run, *_: Any) -> list[Finding]:
    login = run.seen.login
    if login is None:
        return []
    if login["ok"]:
        return [_say("login", Level.PASS, LOGIN_OK, {"user": t.user or ""})]
    if login["tried"]:
        params = {"user": t.user or "", "reply": login["reply"]}
        return [_say("login", Level.FAIL, LOGIN_REFUSED, params, {"code": login["code"]})]
    mechanisms = " ".join(auth_mechanisms(run.seen.after_tls)) or "-"
    return [_say("login", Level.FAIL, LOGIN_NOT_TRIED, {"mechanisms": mechanisms})]


_JUDGES: tuple[Callable[..., list[Finding]], ...] = (
    _judge_dialogue,
    _judge_versions,
    _judge_certificate,
    _judge_auth,
    _judge_size,
    _judge_login,
)
