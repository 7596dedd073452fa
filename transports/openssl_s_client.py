"""``openssl s_client`` as the TLS pipe, with the SMTP dialogue spoken from here.

s_client does TCP, TLS and (with ``-starttls smtp``) the STARTTLS upgrade;
we write each SMTP command to its stdin and check every reply code, so a
failure names the exact step. The password goes in base64 through stdin.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import selectors
import subprocess
import tempfile
import time

from .base import SENT, SendResult, Step, Target, Transport, tls_name
from .classify import (
    CLOSED,
    CLOSED_IN_DATA,
    CONNECTION_CLOSED,
    GREETING,
    HANDSHAKE,
    NO_STARTTLS,
    REPLY_LIMIT,
    STARTTLS_MISSING,
    TLS_UP,
    command_step,
    failed_at,
    key_line,
    step_from_text,
    timed_out,
    waited_at,
)
from .run import child_env, end_group, start_tied
from .versions import VersionInfo, parse_openssl_banner

_REPLY = re.compile(rb"^(\d{3})([ -])(.*)$")


def parse_openssl_version(text: str) -> VersionInfo:
    """``openssl version``; OpenSSL 3 adds the library it really loaded in brackets.

    >>> parse_openssl_version("OpenSSL 3.0.19 27 Jan 2026 (Library: OpenSSL 3.0.22 25 Aug 2026)")
    VersionInfo(version='3.0.19', library='OpenSSL', library_version='3.0.22')
    >>> parse_openssl_version("OpenSSL 0.9.8zh 3 Dec 2015")
    VersionInfo(version='0.9.8zh', library='OpenSSL', library_version='0.9.8zh')
    """
    tool = parse_openssl_banner(text)
    if tool is None:
        return VersionInfo()
    library = tool
    loaded = re.search(r"\(Library:\s*([^)]*)\)", text)
    if loaded:
        library = parse_openssl_banner(loaded.group(1)) or tool
    return VersionInfo(tool[1], library[0], library[1])


class DialogueError(Exception):
    def __init__(self, step: Step, detail: str) -> None:
        super().__init__(detail)
        self.step, self.detail = step, detail


class ConnectionEnded(EOFError):
    """s_client's output ended or its input broke while the dialogue stood at ``step``:
    s_client is gone, because the server closed the connection or the handshake failed."""

    def __init__(self, step: Step) -> None:
        super().__init__(step.value)
        self.step = step


class Dialogue:
    """Line-wise SMTP over the pipes of a running s_client, with one deadline for all."""

    def __init__(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        self.proc, self.deadline = proc, deadline
        self.transcript: list[str] = []
        self.step = Step.CONNECT  # where the dialogue stands: the greeting, then each command
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        assert proc.stdout is not None
        self._selector.register(proc.stdout, selectors.EVENT_READ)

    def _line(self) -> bytes:
        assert self.proc.stdout is not None
        while b"\n" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not self._selector.select(left):
                raise TimeoutError
            if len(self._buffer) > REPLY_LIMIT:
                raise DialogueError(self.step, f"reply line longer than {REPLY_LIMIT} bytes")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise ConnectionEnded(self.step)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self, step: Step, expect: tuple[int, ...]) -> int:
        """Read one (multi-line) reply; raise for a code not in ``expect``."""
        self.step, size = step, 0
        while True:
            line = self._line()
            size += len(line)
            if size > REPLY_LIMIT:
                self.transcript.append(f"S: [... {size} bytes of reply lines]")
                raise DialogueError(step, f"reply longer than {REPLY_LIMIT} bytes")
            self.transcript.append("S: " + line.decode("utf-8", "replace"))
            match = _REPLY.match(line)
            if match and match.group(2) == b" ":
                code = int(match.group(1))
                if code not in expect:
                    raise DialogueError(step, line.decode("utf-8", "replace"))
                return code

    def send(self, line: str, shown: str | None = None) -> None:
        self.step = command_step(line) or self.step  # "." stays in DATA
        self.transcript.append("C: " + (shown if shown is not None else line))
        self.write(line.encode() + b"\r\n")

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise ConnectionEnded(self.step) from exc


def dot_stuffed(message: bytes) -> bytes:
    lines = message.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


class OpensslSClient(Transport):
    key = "openssl"
    binary = "openssl"
    version_args = (("version",),)
    parse_version = staticmethod(parse_openssl_version)

    def argv(self, exe: str, target: Target) -> list[str]:
        try:
            ipaddress.ip_address(target.host)
            check = ["-verify_ip", target.host]
        except ValueError:
            check = ["-verify_hostname", target.host, "-servername", target.host]
        # -ign_eof: without it s_client treats lines starting with Q or R (QUIT, RCPT)
        # as its own commands. -brief puts the TLS summary on stderr, data stays on stdout.
        argv = [
            exe,
            "s_client",
            "-connect",
            f"{target.url_host}:{target.port}",
            "-brief",
            "-ign_eof",
        ]
        if target.verify:
            argv += ["-verify_return_error", *check]
        if target.ca_file:
            argv += ["-CAfile", target.ca_file]
        if not target.implicit_tls:
            argv += ["-starttls", "smtp", "-name", target.helo]
        return argv

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        with tempfile.TemporaryFile() as stderr:
            proc = start_tied(  # own process group, dies with this process (run.py)
                self.argv(exe, target),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=child_env(),
            )
            talk = Dialogue(proc, time.monotonic() + target.timeout)
            result: SendResult | None = None
            failed: Exception | None = None
            try:
                result = self._dialogue(talk, target, message)
            except (TimeoutError, EOFError, BrokenPipeError, DialogueError) as exc:
                failed = exc
            finally:
                exited_by_itself = proc.poll()
                end_group(proc)
                stderr.seek(0)
                err = stderr.read().decode("utf-8", "replace")
        if isinstance(failed, TimeoutError):
            result = timed_out(target, self._waited_at(talk, err, target))
        elif result is None:
            assert failed is not None
            result = self._failure(failed, err, target)
        result.exit_code = 0 if result.ok else exited_by_itself  # None: we stopped it
        result.transcript = "\n".join([*talk.transcript, err.strip()])
        version = re.search(r"Protocol version: (\S+)", err)
        result.tls_version = tls_name(version.group(1)) if version else None
        return result

    @staticmethod
    def _waited_at(talk: Dialogue, err: str, target: Target) -> str | None:
        """What s_client waited for. Before its TLS session is up it says nothing: with
        -starttls it reads the greeting, EHLO reply and STARTTLS reply itself, and a
        greeting that never comes (an implicit-TLS port) is the wait seen in practice."""
        if not TLS_UP.search(err):
            return HANDSHAKE if target.implicit_tls else GREETING
        return waited_at("\n".join([*talk.transcript, err]), target.implicit_tls)

    @staticmethod
    def _failure(exc: Exception, err: str, target: Target) -> SendResult:
        code = None
        lines = [ln.strip() for ln in reversed(err.splitlines()) if ln.strip()]
        if isinstance(exc, DialogueError):
            step, detail = exc.step, exc.detail
        elif isinstance(exc, ConnectionEnded) and TLS_UP.search(err):
            # The TLS session was up ("CONNECTION ESTABLISHED"): s_client ended because the
            # server closed the connection, at the step the dialogue stood at. Its "unexpected
            # eof while reading" is no handshake failure, its printout of the certificate
            # no certificate problem.
            step = exc.step
            code = CLOSED_IN_DATA if step is Step.DATA else CONNECTION_CLOSED
            detail = next(
                (ln for ln in lines if CLOSED.search(ln)), "s_client ended: the connection closed"
            )
        elif missing := next((ln for ln in lines if STARTTLS_MISSING.search(ln)), None):
            # s_client reads the EHLO reply itself before STARTTLS; the handshake that it
            # then tries "anyway" fails in turn.
            step, code, detail = Step.EHLO, NO_STARTTLS, missing
        else:  # s_client ended before the dialogue did: its stderr says why
            step = step_from_text(err)
            if step in (Step.UNKNOWN, Step.EHLO):
                step = Step.CONNECT
            detail = key_line(err)
        return failed_at(step, target, detail, code)

    def _dialogue(self, talk: Dialogue, target: Target, message: bytes) -> SendResult:
        if target.implicit_tls:  # with -starttls s_client has eaten the greeting already
            talk.reply(Step.CONNECT, (220,))
        talk.send(f"EHLO {target.helo}")
        talk.reply(Step.EHLO, (250,))
        secret = base64.b64encode(f"\0{target.user}\0{target.password}".encode()).decode()
        talk.send(f"AUTH PLAIN {secret}", shown="AUTH PLAIN ********")
        talk.reply(Step.AUTH, (235,))
        talk.send(f"MAIL FROM:<{target.sender}>")
        talk.reply(Step.MAIL_FROM, (250,))
        talk.send(f"RCPT TO:<{target.recipient}>")
        talk.reply(Step.RCPT_TO, (250, 251))
        talk.send("DATA")
        talk.reply(Step.DATA, (354,))
        talk.write(dot_stuffed(message))
        talk.transcript.append(f"C: [message of {len(message)} bytes]")
        talk.send(".")
        talk.reply(Step.DATA, (250,))
        talk.send("QUIT")
        return SendResult(ok=True, step=Step.DONE, reason=SENT)
