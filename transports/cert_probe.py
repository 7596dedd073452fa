"""What a command does not say, asked of the server: why its certificate fails, and
whether it offers AUTH.

mutt in batch mode says "Untrusted server certificate" for a chain from an unknown CA
and for a certificate of another name alike, and nothing more at any debug level.
One TLS handshake with the same trust (the CA file and the system's CAs, as mutt
has them), and no login, tells the two apart: OpenSSL checks the chain before the
name, so a certificate with both faults is named untrusted, the one to fix first.
"""

from __future__ import annotations

import socket
import ssl

from .base import SendResult, Target, suggest_for
from .mode_probe import EHLO_NAME, read_reply

PROBE_TIMEOUT = 10.0
UNTRUSTED = frozenset({"tls_untrusted", "tls_verify_certificates"})


def name_issuer(result: SendResult, target: Target) -> SendResult:
    """An untrusted certificate's suggestion with its issuer named: no command's words
    say who issued it, so the server is asked (one handshake, no login, no mail)."""
    if result.ok or result.reason_code not in UNTRUSTED:
        return result
    issuer = certificate_issuer(target)
    if issuer and (found := suggest_for(result, target, issuer=issuer)) is not None:
        result.suggestion, result.action = found.text, found.action
    return result


def certificate_issuer(target: Target) -> str | None:
    """The issuer of the server's certificate ("CN=R11,O=Let's Encrypt,C=US"), read
    without verifying it; None when the server or ``cryptography`` cannot tell."""
    try:
        from cryptography import x509
    except ImportError:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    timeout = min(PROBE_TIMEOUT, target.timeout)
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
            if not target.implicit_tls and not _starttls(sock):
                return None
            with context.wrap_socket(sock, server_hostname=target.host) as tls:
                der = tls.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).issuer.rfc4514_string() if der else None
    except (OSError, ValueError):
        return None


def certificate_problem(target: Target) -> str | None:
    """OpenSSL's words for what is wrong with the server's certificate for
    ``target.host`` ("Hostname mismatch, ...", "unable to get local issuer
    certificate"), or None when it finds nothing wrong or cannot ask."""
    context = ssl.create_default_context()
    if target.ca_file:
        context.load_verify_locations(target.ca_file)
    timeout = min(PROBE_TIMEOUT, target.timeout)
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
            if not target.implicit_tls and not _starttls(sock):
                return None
            with context.wrap_socket(sock, server_hostname=target.host):
                return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc)
    except (OSError, ValueError):
        return None


def offers_login(target: Target) -> bool | None:
    """Whether the server offers AUTH once TLS is up, in the account's mode; None when
    it cannot be asked (refused, no TLS, not SMTP).

    postfix's log never says whether it logged in. It does log in whenever its map has
    the relay's entry and the server offers AUTH, and a refused login defers the mail;
    only a server that offers no AUTH at all gets a message from it without one.
    """
    context = ssl.create_default_context()
    if target.ca_file:
        context.load_verify_locations(target.ca_file)
    if not target.verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    timeout = min(PROBE_TIMEOUT, target.timeout)
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
            if not target.implicit_tls and not _starttls(sock):
                return None
            with (
                context.wrap_socket(sock, server_hostname=target.host) as tls,
                tls.makefile("rb") as reader,
            ):
                if target.implicit_tls and _code(reader) != 220:
                    return None
                tls.sendall(f"EHLO {EHLO_NAME}\r\n".encode())
                reply = read_reply(reader)
                tls.sendall(b"QUIT\r\n")
    except (OSError, ValueError):
        return None
    if not reply or not reply[-1].startswith(b"250"):
        return None
    return any(line[4:].strip().upper().startswith(b"AUTH") for line in reply)


def _starttls(sock: socket.socket) -> bool:
    """Greeting, EHLO and STARTTLS in clear; True when the server agreed to TLS."""
    with sock.makefile("rb") as reader:
        if _code(reader) != 220:
            return False
        sock.sendall(f"EHLO {EHLO_NAME}\r\n".encode())
        if _code(reader) != 250:
            return False
        sock.sendall(b"STARTTLS\r\n")
        return _code(reader) == 220


def _code(reader) -> int | None:
    """The code of one SMTP reply, all its lines read."""
    reply = read_reply(reader)
    return int(reply[-1][:3]) if reply else None
