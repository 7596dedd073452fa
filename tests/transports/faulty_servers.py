"""Small SMTP servers on 127.0.0.1 that go wrong in one chosen way, for failure tests.

Each speaks just enough SMTP (EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA)
over real sockets, with the test PKI of tests/support/smtp_server.py (STARTTLS or implicit
TLS), and then does the one thing it is made for:

- ``DROP_IN_DATA``: a proper dialogue with AUTH, then, after 354 and some bytes of
  the message, the connection is closed without a reply;
- ``HUGE_EHLO`` / ``HUGE_EHLO_LINE`` / ``HUGE_GREETING``: a 10 MB reply to EHLO (the
  first one: before STARTTLS in that mode), as 10 MB of ``250-`` lines that never come
  to a last line or as one 10 MB line, or a 10 MB greeting line; then the server
  stops sending (half-close) and waits for the client to hang up;
- ``CLOSE_AFTER_HANDSHAKE``: the TLS handshake completes (implicit TLS, or after
  STARTTLS), then the connection is closed.

Plain module, no pytest: one thread accepts, one thread per connection; ``stop()``
closes every socket so that no client and no test is left waiting.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from pki import Pki
from smtp_server import DEFAULT_PASSWORD, DEFAULT_USER, HOST

DROP_IN_DATA = "drop_in_data"
HUGE_EHLO = "huge_ehlo"  # 10 MB of "250-" lines, no last line
HUGE_EHLO_LINE = "huge_ehlo_line"  # one 10 MB "250 " line
HUGE_GREETING = "huge_greeting"  # one 10 MB "220 " line
CLOSE_AFTER_HANDSHAKE = "close_after_handshake"
FAULTS = (DROP_IN_DATA, HUGE_EHLO, HUGE_EHLO_LINE, HUGE_GREETING, CLOSE_AFTER_HANDSHAKE)

HUGE_SIZE = 10 * 1024 * 1024
# DROP_IN_DATA closes once this much of the message has arrived (or its end, if sooner).
DROP_AFTER_BYTES = 4096
SOCKET_TIMEOUT = 30.0
_LINE_LIMIT = 64 * 1024


@dataclass
class _Session:
    """What one connection has done so far."""

    authenticated: bool = False
    ehlo_seen: bool = False


class _Closed(Exception):
    """The client went away, or the server is stopping."""


class FaultyServer:
    """An SMTP server on 127.0.0.1 that fails as ``fault`` says (see the module)."""

    def __init__(
        self,
        pki: Pki,
        fault: str,
        *,
        implicit_tls: bool,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
    ) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self.pki, self.fault, self.implicit_tls = pki, fault, implicit_tls
        self.user, self.password = user, password
        self.host = HOST
        self.port = 0
        self.ca_file: Path = pki.ca_file
        # What happened, for the test to check that the fault was really reached.
        self.events: list[str] = []
        self.data_bytes = 0  # message bytes received before DROP_IN_DATA closed
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.load_cert_chain(pki.cert_file, pki.key_file)
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle --

    def start(self) -> FaultyServer:
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)  # polling accept: close() does not wake accept()
        self.port = self._listener.getsockname()[1]
        self._spawn(self._accept_loop, "faulty-accept")
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> FaultyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reached(self, event: str) -> bool:
        return event in self.events

    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(SOCKET_TIMEOUT)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._keep(client)
            self._spawn(self._serve, "faulty-conn", client)

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                raise _Closed
            self._sockets.append(sock)

    # -- one connection --

    def _serve(self, sock: socket.socket) -> None:
        conn = _Connection(sock)
        try:
            if self.implicit_tls:
                conn.wrap(self._context)
                self._keep(conn.sock)
                self.events.append("tls")
                if self.fault == CLOSE_AFTER_HANDSHAKE:
                    self.events.append("closed_after_handshake")
                    return
            if self.fault == HUGE_GREETING:
                self.events.append("huge_greeting")
                conn.send_huge_line("220 ")
                return
            conn.send("220 localhost ESMTP faulty test server")
            self._dialogue(conn)
        except (_Closed, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            conn.close()

    def _dialogue(self, conn: _Connection) -> None:
        session = _Session()
        while True:
            line = conn.read_line()
            verb = line.split(" ", 1)[0].upper()
            if not self._answer(conn, session, verb, line):
                return

    def _answer(self, conn: _Connection, session: _Session, verb: str, line: str) -> bool:
        """Answers one command; False once the connection is to end (a fault, or QUIT)."""
        if verb in ("EHLO", "HELO"):
            return self._greet(conn, session, verb)
        if verb == "STARTTLS" and not conn.tls:
            return self._starttls(conn, session)
        if verb == "AUTH":
            session.authenticated = self._auth(conn, line)
        elif verb == "MAIL":
            conn.send(
                "250 2.1.0 OK" if session.authenticated else "530 5.7.0 Authentication required"
            )
        elif verb == "RCPT":
            conn.send("250 2.1.5 OK")
        elif verb == "DATA":
            return self._data(conn)
        elif verb in ("RSET", "NOOP"):
            conn.send("250 2.0.0 OK")
        elif verb == "QUIT":
            conn.send("221 2.0.0 Bye")
            return False
        else:
            conn.send("502 5.5.2 Command not recognised")
        return True

    def _greet(self, conn: _Connection, session: _Session, verb: str) -> bool:
        if not session.ehlo_seen and self.fault in (HUGE_EHLO, HUGE_EHLO_LINE):
            self.events.append("huge_ehlo")
            if self.fault == HUGE_EHLO:
                conn.send_huge_multiline("250-")
            else:
                conn.send_huge_line("250 ")
            return False
        session.ehlo_seen = True
        extensions = ["AUTH PLAIN LOGIN", "8BITMIME", "SIZE 33554432"]
        if not conn.tls:
            extensions.insert(0, "STARTTLS")
        conn.send_reply(250, ["localhost", *extensions] if verb == "EHLO" else ["localhost"])
        return True

    def _starttls(self, conn: _Connection, session: _Session) -> bool:
        conn.send("220 2.0.0 Ready to start TLS")
        conn.wrap(self._context)
        self._keep(conn.sock)
        self.events.append("tls")
        if self.fault == CLOSE_AFTER_HANDSHAKE:
            self.events.append("closed_after_handshake")
            return False
        session.ehlo_seen = False  # RFC 3207: the client greets again
        return True

    def _data(self, conn: _Connection) -> bool:
        conn.send("354 End data with <CR><LF>.<CR><LF>")
        if self.fault == DROP_IN_DATA:
            self.data_bytes = conn.read_some_data(DROP_AFTER_BYTES)
            self.events.append("dropped_in_data")
            return False
        conn.read_data()
        conn.send("250 2.0.0 OK queued")
        return True

    def _auth(self, conn: _Connection, line: str) -> bool:
        words = line.split()
        mechanism = words[1].upper() if len(words) > 1 else ""
        if mechanism == "PLAIN":
            answer = words[2] if len(words) > 2 else None
            if answer is None:
                conn.send("334 ")
                answer = conn.read_line()
            parts = _b64(answer).split("\0")
            user, password = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        elif mechanism == "LOGIN":
            if len(words) > 2:
                user = _b64(words[2])
            else:
                conn.send("334 VXNlcm5hbWU6")
                user = _b64(conn.read_line())
            conn.send("334 UGFzc3dvcmQ6")
            password = _b64(conn.read_line())
        else:
            conn.send("504 5.5.4 Unrecognized authentication type")
            return False
        if user == self.user and password == self.password:
            self.events.append("authenticated")
            conn.send("235 2.7.0 Authentication successful")
            return True
        conn.send("535 5.7.8 Authentication credentials invalid")
        return False


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8", "replace")
    except (ValueError, UnicodeError):
        return ""


class _Connection:
    """Line-wise reading and writing over a plain or a TLS socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tls = False
        self._buffer = b""

    def wrap(self, context: ssl.SSLContext) -> None:
        self._buffer = b""  # RFC 3207: nothing read before the handshake counts after it
        self.sock = context.wrap_socket(self.sock, server_side=True)
        self.tls = True

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed
        return chunk

    def read_line(self) -> str:
        while b"\n" not in self._buffer:
            if len(self._buffer) > _LINE_LIMIT:
                raise _Closed
            self._buffer += self._recv()
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_data(self) -> None:
        while b"\r\n.\r\n" not in b"\r\n" + self._buffer:
            self._buffer += self._recv()
        _, self._buffer = (b"\r\n" + self._buffer).split(b"\r\n.\r\n", 1)

    def read_some_data(self, enough: int) -> int:
        """Read until ``enough`` bytes of the message (or its end) are in; their count."""
        while len(self._buffer) < enough and b"\r\n.\r\n" not in b"\r\n" + self._buffer:
            self._buffer += self._recv()
        return len(self._buffer)

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def send_reply(self, code: int, lines: list[str]) -> None:
        text = "".join(
            f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n" for i, line in enumerate(lines)
        )
        self.sock.sendall(text.encode())

    def send_huge_line(self, prefix: str) -> None:
        chunk = b"x" * 65536
        self.sock.sendall(prefix.encode())
        for _ in range(HUGE_SIZE // len(chunk)):
            self.sock.sendall(chunk)
        self.sock.sendall(b"\r\n")
        self._hang_up_after_sending()

    def send_huge_multiline(self, prefix: str) -> None:
        line = prefix.encode() + b"X" * 94 + b"\r\n"  # 100 bytes a line
        block = line * 1024
        for _ in range(HUGE_SIZE // len(block)):
            self.sock.sendall(block)
        self._hang_up_after_sending()

    def _hang_up_after_sending(self) -> None:
        """Send nothing more (FIN after the last byte), read and drop what the client still
        sends until it hangs up: closing with unread input would send a reset that can
        destroy the end of the reply before the client has read it."""
        self.sock.shutdown(socket.SHUT_WR)  # on a TLS socket: TCP only, no close_notify
        with contextlib.suppress(OSError, _Closed, ssl.SSLError):
            while True:
                self._recv()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
