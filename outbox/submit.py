"""``xmail-sendmail``: sendmail's calling convention, into the outbox.

    xmail-sendmail [-t] [-i|-oi] [-f SENDER] [-F NAME] [--] [RECIPIENT ...] < message

Accepted and ignored, as every sendmail accepts them: -odi, -odb, -oem, -oee, -v.
Anything else is a usage error. Exit codes follow sysexits.h: 0 the message is safely
in the outbox, 64 usage, 65 a bad message (no recipient, a header line without a
colon, over the size limit), 73 the outbox cannot be written (nothing was accepted:
the caller must keep the message).
"""

from __future__ import annotations

import os
import pwd
import re
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime, getaddresses, localtime, make_msgid

from .spool import Envelope, outbox_dir, submit

EX_OK, EX_USAGE, EX_DATAERR, EX_CANTCREAT = 0, 64, 65, 73
IGNORED = {"-odi", "-odb", "-oem", "-oee", "-v"}
MAX_BYTES = int(os.environ.get("XMAILADMIN_MAX_MESSAGE_BYTES") or 25 * 1024 * 1024)
_ADDRESS = re.compile(r"^[^\s@<>]+@[^\s@<>]+$")


class Refused(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


@dataclass
class Options:
    recipients: list[str] = field(default_factory=list)
    from_headers: bool = False  # -t
    dot_ends: bool = True  # a line of "." ends the message unless -i / -oi
    sender: str | None = None
    full_name: str | None = None


def parse(argv: Sequence[str]) -> Options:
    opts, args = Options(), list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            opts.recipients += args
            break
        if arg in IGNORED:
            continue
        if arg == "-t":
            opts.from_headers = True
        elif arg in ("-i", "-oi"):
            opts.dot_ends = False
        elif arg in ("-f", "-F") or (arg[:2] in ("-f", "-F") and len(arg) > 2):
            value = arg[2:] or (args.pop(0) if args else None)
            if value is None:
                raise Refused(EX_USAGE, f"{arg} needs a value")
            if arg.startswith("-f"):
                opts.sender = value
            else:
                opts.full_name = value
        elif arg.startswith("-"):
            raise Refused(EX_USAGE, f"unknown option {arg}")
        else:
            opts.recipients.append(arg)
    return opts


def read_message(stream, dot_ends: bool) -> bytes:
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise Refused(EX_DATAERR, f"the message is larger than {MAX_BYTES} bytes")
    if dot_ends:
        # sendmail without -i ends the message at a line holding only a dot.
        for match in re.finditer(rb"^\.\r?$", data, re.MULTILINE):
            return data[: match.start()]
    return data


def split_header(message: bytes) -> tuple[list[bytes], bytes, bytes]:
    """Header lines (continuations joined to their line), the line ending, the body."""
    newline = b"\r\n" if b"\r\n" in message[:2000] else b"\n"
    head, sep, body = message.partition(newline + newline)
    if not sep and message.startswith(newline):
        head, body = b"", message[len(newline) :]
    lines: list[bytes] = []
    for line in head.split(newline) if head else []:
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += newline + line
        elif b":" not in line:
            raise Refused(EX_DATAERR, f"header line without a colon: {line[:60]!r}")
        else:
            lines.append(line)
    return lines, newline, body if sep else b""


def _name(line: bytes) -> str:
    return line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def _value(line: bytes) -> str:
    return line.split(b":", 1)[1].decode("utf-8", "replace")


def prepared(message: bytes, opts: Options, user: str) -> tuple[Envelope, bytes]:
    """The envelope and the message to keep: Date and Message-ID added when missing,
    Bcc removed with -t, everything else byte for byte."""
    lines, newline, body = split_header(message)
    recipients = list(opts.recipients)
    if opts.from_headers:
        fields = [_value(line) for line in lines if _name(line) in ("to", "cc", "bcc")]
        recipients += [addr for _, addr in getaddresses(fields) if addr]
        lines = [line for line in lines if _name(line) != "bcc"]
    recipients = list(dict.fromkeys(recipients))
    if not recipients:
        raise Refused(EX_DATAERR, "no recipient: name one, or use -t with To/Cc/Bcc")
    if bad := [r for r in recipients if not _ADDRESS.match(r)]:
        raise Refused(EX_DATAERR, f"not an address: {', '.join(bad)}")
    names = {_name(line) for line in lines}
    # gethostname, not getfqdn: a DNS lookup could hang an application's send.
    sender = opts.sender or f"{user}@{socket.gethostname()}"
    added = []
    if "from" not in names:
        shown = f"{opts.full_name} <{sender}>" if opts.full_name else sender
        added.append(f"From: {shown}".encode())
    if "date" not in names:
        added.append(f"Date: {format_datetime(localtime())}".encode())
    if "message-id" not in names:
        added.append(f"Message-ID: {make_msgid(domain=sender.rpartition('@')[2])}".encode())
    head = newline.join(lines + added)
    kept = head + newline + newline + body
    return Envelope(sender=sender, recipients=recipients, submitted_by=user), kept


def main(argv: Sequence[str] | None = None) -> int:
    user = pwd.getpwuid(os.getuid()).pw_name
    try:
        opts = parse(sys.argv[1:] if argv is None else argv)
        message = read_message(sys.stdin.buffer, opts.dot_ends)
        envelope, kept = prepared(message, opts, user)
    except Refused as exc:
        print(f"xmail-sendmail: {exc}", file=sys.stderr)
        return exc.code
    root = outbox_dir()
    try:
        message_id = submit(root, envelope, kept)
    except OSError as exc:
        print(
            f"xmail-sendmail: cannot write the outbox {root}: {exc.strerror or exc}; "
            "nothing was accepted",
            file=sys.stderr,
        )
        return EX_CANTCREAT
    if os.environ.get("XMAILADMIN_SENDMAIL_VERBOSE"):
        print(f"xmail-sendmail: in the outbox as {message_id} at {time.ctime()}", file=sys.stderr)
    return EX_OK
