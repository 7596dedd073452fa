"""Which TLS mode a server speaks on a port, from one connection and no login.

The vendor's rule "465 is implicit TLS, every other port STARTTLS" is only a default:
providers run implicit TLS on 2465 or STARTTLS on 465 behind a proxy. Guessing wrong
costs the user 30 s of timeouts per command and a misleading reason, so the account
form asks the server instead:

- a server that greets in clear ("220 …") before the client says anything speaks
  SMTP in clear and upgrades with STARTTLS (its EHLO answer says whether it offers it);
- a server that stays silent but completes a TLS handshake, then greets inside TLS,
  expects implicit TLS (SMTPS);
- anything else is said as seen, with no mode guessed.

The certificate is not checked here: this only tells the mode, a test send judges trust.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from .base import Mode, TargetError, normalise_host
from .texts import Text, gettext_noop

# A server in clear greets within milliseconds; postfix's postscreen may wait a few
# seconds on purpose. A TLS server says nothing until the client's hello.
GREETING_WAIT = 2.0
EHLO_NAME = "xmailadmin.invalid"


@dataclass(frozen=True)
class ModeFinding:
    """What the server showed. ``mode`` is None when it fits neither mode."""

    mode: Mode | None
    text: Text
    banner: str = ""
    starttls_offered: bool | None = None
    tls_version: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode.value if self.mode else None,
            "text": self.text.to_dict(),
            "banner": self.banner,
            "starttls_offered": self.starttls_offered,
            "tls_version": self.tls_version,
        }


def detect_mode(
    host: str, port: int, *, timeout: float = 10.0, greeting_wait: float = GREETING_WAIT
) -> ModeFinding:
    """Connect once to ``host``:``port`` and say which mode the server expects."""
    try:
        host = normalise_host(host)
    except TargetError as exc:
        return ModeFinding(None, exc.text)
    if not 1 <= port <= 65535:
        return ModeFinding(
            None, Text(gettext_noop("port %(port)s is not between 1 and 65535"), {"port": port})
        )
    where = {"host": host, "port": port}
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return ModeFinding(
            None,
            Text(
                gettext_noop("no connection to %(host)s:%(port)s: %(error)s"),
                {**where, "error": exc.strerror or str(exc)},
            ),
        )
    with sock:
        sock.settimeout(min(greeting_wait, timeout))
        try:
            first = sock.recv(512)
        except TimeoutError:
            return _try_tls(sock, host, timeout, greeting_wait, where)
        except OSError:
            return _closed(where)
        sock.settimeout(timeout)
        return _clear(sock, first, where)


def _clear(sock: socket.socket, first: bytes, where: dict[str, object]) -> ModeFinding:
    if not first:
        return _closed(where)
    banner = _line(first)
    if not first[:3].isdigit():
        return ModeFinding(
            None,
            Text(
                gettext_noop("%(host)s:%(port)s answered, but not in SMTP: %(banner)s"),
                {**where, "banner": banner},
            ),
            banner,
        )
    offered = _offers_starttls(sock)
    if offered:
        text = gettext_noop(
            "%(host)s:%(port)s greets in clear and offers STARTTLS: the mode is STARTTLS"
        )
    elif offered is False:
        text = gettext_noop(
            "%(host)s:%(port)s greets in clear but offers no STARTTLS: mail would go "
            "unencrypted, use another port"
        )
    else:
        text = gettext_noop(
            "%(host)s:%(port)s greets in clear: the mode is STARTTLS (whether it offers "
            "STARTTLS could not be read)"
        )
    mode = Mode.STARTTLS if offered is not False else None
    return ModeFinding(mode, Text(text, {**where, "banner": banner}), banner, offered)


def _offers_starttls(sock: socket.socket) -> bool | None:
    try:
        sock.sendall(f"EHLO {EHLO_NAME}\r\n".encode())
        with sock.makefile("rb") as reader:
            reply = read_reply(reader)
        sock.sendall(b"QUIT\r\n")
    except OSError:
        return None
    if not reply or not reply[0].startswith(b"250"):
        return None
    return any(line[4:].strip().upper().startswith(b"STARTTLS") for line in reply)


def read_reply(reader) -> list[bytes]:
    """One SMTP reply from a socket's file, every line of it (``250-`` continues,
    ``250 `` ends), at most 100 lines; [] when what came is no SMTP reply."""
    lines = []
    for _ in range(100):
        line = reader.readline(1024)
        if len(line) < 4 or not line[:3].isdigit():
            return []
        lines.append(line.rstrip(b"\r\n"))
        if line[3:4] != b"-":
            return lines
    return []


def _try_tls(
    sock: socket.socket, host: str, timeout: float, waited: float, where: dict
) -> ModeFinding:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the mode only; trust is the test send's question
    sock.settimeout(timeout)
    try:
        tls = context.wrap_socket(sock, server_hostname=_sni(host))
    except ssl.SSLError as exc:
        if exc.reason == "WRONG_VERSION_NUMBER":
            # The server did answer the hello, in clear: a late greeting (postscreen).
            text = gettext_noop(
                "%(host)s:%(port)s greets in clear, but only after %(wait)s s: the mode is STARTTLS"
            )
            return ModeFinding(Mode.STARTTLS, Text(text, {**where, "wait": f"{waited:g}"}))
        return _silent(where, timeout)
    except (TimeoutError, OSError):
        return _silent(where, timeout)
    with tls:
        version = tls.version() or ""
        try:
            banner = _line(tls.recv(512))
        except OSError:
            banner = ""
    if not banner[:3].isdigit():
        text = gettext_noop(
            "%(host)s:%(port)s speaks TLS (%(version)s) but sent no SMTP greeting inside it"
        )
        return ModeFinding(None, Text(text, {**where, "version": version}), banner)
    text = gettext_noop(
        "%(host)s:%(port)s waits for TLS first (%(version)s), then greets: the mode is "
        "SMTPS (implicit TLS)"
    )
    return ModeFinding(
        Mode.SMTPS, Text(text, {**where, "version": version}), banner, tls_version=version
    )


def _silent(where: dict, timeout: float) -> ModeFinding:
    text = gettext_noop(
        "%(host)s:%(port)s accepted the connection but neither greets in clear nor "
        "answers a TLS handshake within %(seconds)s s"
    )
    return ModeFinding(None, Text(text, {**where, "seconds": f"{timeout:g}"}))


def _closed(where: dict) -> ModeFinding:
    text = gettext_noop("%(host)s:%(port)s closed the connection without a word")
    return ModeFinding(None, Text(text, where))


def _sni(host: str) -> str | None:
    # An IP literal must not go into SNI (RFC 6066); ssl refuses a bracketed one anyway.
    return None if ":" in host or host.replace(".", "").isdigit() else host


def _line(data: bytes) -> str:
    return data.decode("utf-8", "replace").split("\r\n", 1)[0].strip()[:200]
