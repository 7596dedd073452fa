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

This module holds the connections; what they saw is judged in ``server_findings``, the
certificate read in ``server_certificate``, the replies in ``smtp_replies``, and the
report is ``server_report``'s (all re-exported here as before).

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
import functools
import math
import os
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from .base import Mode, TargetError, ca_file_problem, check_credentials
from .base import check_server as valid_server
from .findings import Finding, Level
from .mode_probe import EHLO_NAME, GREETING_WAIT, read_reply
from .secrecy import redact
from .server_certificate import hostname_matches
from .server_findings import report_of
from .server_report import CHECKS, TLS_VERSIONS, CertificateReport, ServerReport
from .server_seen import CheckTarget, Clock, Run, Seen
from .smtp_replies import (
    auth_mechanisms,
    capabilities_of,
    keywords_of,
    reply_code,
    reply_text,
    reply_words,
    ssl_words,
)
from .texts import Text, gettext_noop

_PINNED = {"1.0": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}
MAX_TIMEOUT = 3600.0
# How OpenSSL says that the answer to a client hello was no TLS (an SMTP greeting).
_CLEAR_TEXT = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"})
_PORT_HINT = Text(
    gettext_noop(
        "mail submission is on port 587 (STARTTLS) or 465 (SMTPS); check the port, and "
        "that no firewall on the way blocks it"
    )
)

__all__ = [
    "CHECKS",
    "CertificateReport",
    "ServerReport",
    "auth_mechanisms",
    "check_server",
    "hostname_matches",
]

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
    clock = Clock(timeout)
    target = CheckTarget(host, port, guess, clock, user or None, password or None)
    run = _run(target, None if ca_problem else ca_file)
    source = "given"
    if mode is None:
        source = "detected" if run.seen.confirmed or run.seen.shown_mode else "port"
        if run.seen.shown_mode is not None:
            target = CheckTarget(
                host, port, run.seen.shown_mode, Clock(timeout), target.user, target.password
            )
            run = _run(target, None if ca_problem else ca_file)
    return report_of(target, run, source, ca_file, ca_problem, time.monotonic() - started)


class _Wire:
    """One connection: SMTP lines in and out, TLS over it, each step within the deadline.
    ``abort()`` (from another thread) ends whatever it waits for at once."""

    def __init__(self, sock: socket.socket, clock: Clock) -> None:
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

    def __init__(self, target: CheckTarget) -> None:
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


def _run(t: CheckTarget, ca_file: str | None) -> Run:
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
        found = Run(
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


def _converse(t: CheckTarget, connections: _Connections) -> Seen:
    seen = Seen()
    wire = None
    try:
        wire = _connect(t, connections, seen)
        wire = _greeted(t, connections, wire, seen)
        if t.mode is Mode.STARTTLS:
            _upgrade(t, wire, seen)
        seen.step = "auth"
        reply = wire.command(f"EHLO {EHLO_NAME}")
        if reply_code(reply) == 250:
            seen.after_tls = capabilities_of(reply)
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


def _connect(t: CheckTarget, connections: _Connections, seen: Seen) -> _Wire:
    start = time.perf_counter()
    try:
        wire = connections.open(main=True)
    except OSError as exc:
        raise _Stop(_connect_failure(t, exc)) from None
    finally:
        connections.main_connected.set()
    seen.connect_ms = round((time.perf_counter() - start) * 1000, 1)
    return wire


def _connect_failure(t: CheckTarget, exc: OSError) -> Finding:
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


def _greeted(t: CheckTarget, connections: _Connections, wire: _Wire, seen: Seen) -> _Wire:
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
    seen.banner = reply_text(reply[0])
    if reply_code(reply) != 220:
        raise _fail("banner", NOT_220, {**t.where, "banner": seen.banner})
    return wire


def _clear_greeting(
    t: CheckTarget, connections: _Connections, wire: _Wire
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
            params = {**t.where, "wait": f"{GREETING_WAIT:g}", "error": ssl_words(exc)}
            raise _fail("banner", SILENT_NO_TLS, params, cancel=True) from None
        connections.close(wire)
        wire = connections.open(main=True)
        return wire, wire.reply()
    except TimeoutError:
        raise _fail("banner", SILENT, {**t.where, "seconds": t.seconds}, cancel=True) from None
    raise _fail("banner", IMPLICIT_TLS_PORT, t.where, mode=Mode.SMTPS, cancel=True)


def _upgrade(t: CheckTarget, wire: _Wire, seen: Seen) -> None:
    """EHLO, STARTTLS and the handshake."""
    seen.step = "starttls"
    reply = wire.command(f"EHLO {EHLO_NAME}")
    if reply_code(reply) != 250:
        raise _fail("banner", EHLO_REFUSED, {**t.where, "reply": reply_words(reply)})
    seen.before_tls = capabilities_of(reply)
    seen.starttls = "STARTTLS" in keywords_of(seen.before_tls)
    if not seen.starttls:
        raise _fail("starttls", NO_STARTTLS)
    reply = wire.command("STARTTLS")
    if reply_code(reply) != 220:
        raise _fail("starttls", STARTTLS_REFUSED, {"reply": reply_words(reply)})
    _handshake(t, wire, seen, "starttls")


def _handshake(t: CheckTarget, wire: _Wire, seen: Seen, check: str, *, first: bool = False) -> None:
    """TLS up on the main connection, the certificate read. ``first``: SMTPS, where a
    clear answer means the port speaks STARTTLS."""
    try:
        tls = wire.start_tls(_unverified_context(), t.sni)
    except ssl.SSLError as exc:
        if first and exc.reason in _CLEAR_TEXT:
            raise _fail("banner", STARTTLS_PORT, t.where, mode=Mode.STARTTLS, cancel=True) from None
        raise _fail(check, HANDSHAKE_FAILED, {"error": ssl_words(exc)}) from None
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


def _login(wire: _Wire, t: CheckTarget, mechanisms: Sequence[str]) -> dict[str, Any]:
    """AUTH PLAIN (or LOGIN, when only that is offered); the server's words without the
    secret, whatever it echoes."""
    assert t.user is not None and t.password is not None
    user, password = t.user, t.password
    if "PLAIN" in mechanisms:
        mechanism = "PLAIN"
        secret = _b64(f"\0{user}\0{password}")
        reply = wire.command(f"AUTH PLAIN {secret}")
        if reply_code(reply) == 334:  # no initial response taken: the same, asked for
            reply = wire.command(secret)
    elif "LOGIN" in mechanisms:
        mechanism = "LOGIN"
        reply = wire.command("AUTH LOGIN")
        for value in (user, password):
            if reply_code(reply) != 334:
                break
            reply = wire.command(_b64(value))
    else:
        return {"tried": False, "ok": False, "code": None, "reply": "", "mechanism": None}
    code = reply_code(reply)
    words = redact(reply_words(reply), user, password)
    return {"tried": True, "ok": code == 235, "code": code, "reply": words, "mechanism": mechanism}


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def _broken(step: str, exc: Exception, t: CheckTarget) -> Finding:
    """The connection failed in the middle of ``step`` (reported as that check)."""
    if isinstance(exc, TimeoutError):
        text = Text(STOPPED_ANSWERING, {"seconds": t.seconds})
    else:
        error = ssl_words(exc) if isinstance(exc, ssl.SSLError) else str(exc) or type(exc).__name__
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
        reply_code(wire.reply()) == 220
        and reply_code(wire.command(f"EHLO {EHLO_NAME}")) == 250
        and reply_code(wire.command("STARTTLS")) == 220
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
