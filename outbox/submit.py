"""``xmail-sendmail``: sendmail's calling convention, into the outbox.

    xmail-sendmail [-t] [-i|-oi] [-f SENDER] [-F NAME] [--wait S] [--] [RECIPIENT ...] < message

Accepted and ignored, as every sendmail accepts them: -odi, -odb, -oem, -oee, -v.
``--wait S`` (or ``--wait=S``) waits up to S seconds for the first delivery attempt
and says on stderr what became of the message: delivered, waiting for a retry (with
the reason and the next try), refused by the server (the sender gets a notice), or
not tried yet. Anything else is a usage error. Exit codes follow sysexits.h: 0 the
message is accepted (delivered, or safely in the outbox for retry; with ``--wait``
stderr says which), 64 usage, 65 a bad message (no recipient, a header line without
a colon, over the size limit), 73 the outbox cannot be written (nothing was accepted:
the caller must keep the message).
"""

from __future__ import annotations

# Every application's send starts this program: only built-in modules and those the
# interpreter has loaded already at start (bench/outbox_bench.py measures it). email,
# json, re, datetime and pathlib are imported where the rare case needs them.
import math
import os
import pwd
import sys
import time

from .spool import Envelope, admin_address, outbox_dir, status_path, submit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

EX_OK, EX_USAGE, EX_DATAERR, EX_CANTCREAT = 0, 64, 65, 73
IGNORED = {"-odi", "-odb", "-oem", "-oee", "-v"}
MAX_BYTES = int(os.environ.get("XMAILADMIN_MAX_MESSAGE_BYTES") or 25 * 1024 * 1024)
POLL_S = 0.05
# In an address list, these need RFC 5322's full parser (quoted names, comments, groups,
# domain literals); without them a list is "addr, Name <addr>, ..." and split by hand.
_NEEDS_PARSER = set('"()\\;:[]')
_NOT_IN_ADDRESS = set(" <>")


class Refused(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


class Options:
    def __init__(
        self,
        recipients: list[str] | None = None,
        from_headers: bool = False,  # -t
        dot_ends: bool = True,  # a line of "." ends the message unless -i / -oi
        sender: str | None = None,
        full_name: str | None = None,
        wait_s: float | None = None,  # --wait: seconds to wait for the first attempt
    ) -> None:
        self.recipients = list(recipients or [])
        self.from_headers = from_headers
        self.dot_ends = dot_ends
        self.sender = sender
        self.full_name = full_name
        self.wait_s = wait_s


def parse(argv: Sequence[str]) -> Options:
    opts, args = Options(), list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            opts.recipients += args
            break
        if arg in IGNORED or arg.startswith("-B"):
            # -B 7BIT / -B8BITMIME (cron sends it): the body type, which SMTP needs not know.
            if arg == "-B" and args:
                args.pop(0)
        elif arg == "-t":
            opts.from_headers = True
        elif arg in ("-i", "-oi"):
            opts.dot_ends = False
        elif arg.startswith("-"):
            _valued(opts, arg, args)
        else:
            opts.recipients.append(arg)
    return opts


def _valued(opts: Options, arg: str, args: list[str]) -> None:
    """-f SENDER, -F NAME (each also glued: -fSENDER), --wait S / --wait=S."""
    if arg[:2] == "-f":
        opts.sender = arg[2:] or _next_value(arg, args)
    elif arg[:2] == "-F":
        opts.full_name = arg[2:] or _next_value(arg, args)
    elif arg == "--wait" or arg.startswith("--wait="):
        opts.wait_s = seconds(arg[len("--wait=") :] if "=" in arg else _next_value(arg, args))
    else:
        raise Refused(EX_USAGE, f"unknown option {arg}")


def _next_value(arg: str, args: list[str]) -> str:
    if not args:
        raise Refused(EX_USAGE, f"{arg} needs a value")
    return args.pop(0)


def seconds(value: str | None) -> float:
    try:
        wait = float(value or "")
    except ValueError:
        wait = -1.0
    if not math.isfinite(wait) or wait < 0:
        raise Refused(EX_USAGE, f"--wait needs a number of seconds (0 or more), not {value!r}")
    return wait


def read_message(stream, dot_ends: bool) -> bytes:
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise Refused(EX_DATAERR, f"the message is larger than {MAX_BYTES} bytes")
    if dot_ends:
        # sendmail without -i ends the message at a line holding only a dot.
        return data[: dot_line(data)]
    return data


def dot_line(data: bytes) -> int | None:
    """Where the first line that is only "." (LF or CRLF) starts; None without one."""
    start = 0
    while (found := data.find(b".", start)) != -1:
        at_line_start = found == 0 or data[found - 1 : found] == b"\n"
        rest = data[found + 1 : found + 3]
        if at_line_start and (rest[:1] in (b"\n", b"") or rest == b"\r\n" or rest == b"\r"):
            return found
        start = found + 1
    return None


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


def prepared(
    message: bytes, opts: Options, user: str, admin: str | None = None
) -> tuple[Envelope, bytes]:
    """The envelope and the message to keep: Date and Message-ID added when missing,
    Bcc removed with -t, mail to a local user sent to ``admin``, everything else byte
    for byte."""
    lines, newline, body = split_header(message)
    recipients = list(opts.recipients)
    if opts.from_headers:
        fields = [_value(line) for line in lines if _name(line) in ("to", "cc", "bcc")]
        recipients += header_addresses(fields)
        lines = [line for line in lines if _name(line) != "bcc"]
    recipients = list(dict.fromkeys(local_to_admin(recipients, admin)))
    if not recipients:
        raise Refused(EX_DATAERR, "no recipient: name one, or use -t with To/Cc/Bcc")
    if bad := [r for r in recipients if not is_address(r)]:
        raise Refused(EX_DATAERR, f"not an address: {', '.join(bad)}")
    names = {_name(line) for line in lines}
    # The host name, not getfqdn: a DNS lookup could hang an application's send.
    sender = opts.sender or f"{user}@{os.uname().nodename}"
    added = []
    if "from" not in names:
        shown = f"{opts.full_name} <{sender}>" if opts.full_name else sender
        added.append(f"From: {shown}".encode())
    if "date" not in names:
        added.append(f"Date: {rfc5322_now()}".encode())
    if "message-id" not in names:
        added.append(f"Message-ID: {new_message_id(sender.rpartition('@')[2])}".encode())
    head = newline.join(lines + added)
    kept = head + newline + newline + body
    return Envelope(sender=sender, recipients=recipients, submitted_by=user), kept


def local_to_admin(recipients: list[str], admin: str | None) -> list[str]:
    """A bare local name (cron mails "root", or the crontab's owner) means the server's
    admin: the SMTP server cannot deliver to it, so it goes to the admin address."""
    local = [r for r in recipients if "@" not in r and r.isprintable() and r.strip() == r
             and not _NOT_IN_ADDRESS.intersection(r)]  # fmt: skip
    if local and not admin:
        raise Refused(
            EX_DATAERR,
            f"{', '.join(local)}: a local user, and no admin address is set to take their "
            "mail (manage.py install_sendmail --admin-address ADDRESS)",
        )
    return [admin if r in local else r for r in recipients]


def header_addresses(fields: list[str]) -> list[str]:
    """The addresses in To/Cc/Bcc values, as ``email.utils.getaddresses`` finds them."""
    if any(_NEEDS_PARSER.intersection(value) for value in fields):
        from email.utils import getaddresses

        return [addr for _, addr in getaddresses(fields) if addr]
    found = []
    for value in fields:
        for part in value.split(","):
            part = " ".join(part.split())  # unfolds continuation lines
            if "<" in part:
                part = part[part.rindex("<") + 1 :].partition(">")[0]
            if part.strip():
                found.append(part.strip())
    return found


def is_address(text: str) -> bool:
    """local@domain: one @, neither side empty, no space, angle bracket or control."""
    local, at, domain = text.partition("@")
    plain = text.isprintable() and not _NOT_IN_ADDRESS.intersection(text)
    return bool(plain and local and at and domain and "@" not in domain)


def rfc5322_now() -> str:
    # %a and %b are English: the program never calls setlocale for LC_TIME.
    return time.strftime("%a, %d %b %Y %H:%M:%S %z", time.localtime())


def new_message_id(domain: str) -> str:
    """Unique as email.utils.make_msgid's: time, process and random bits."""
    return f"<{time.time_ns()}.{os.getpid()}.{os.urandom(5).hex()}@{domain}>"


def main(argv: Sequence[str] | None = None) -> int:
    user = pwd.getpwuid(os.getuid()).pw_name
    try:
        opts = parse(sys.argv[1:] if argv is None else argv)
        message = read_message(sys.stdin.buffer, opts.dot_ends)
        root = outbox_dir()
        envelope, kept = prepared(message, opts, user, admin_address(root))
    except Refused as exc:
        print(f"xmail-sendmail: {exc}", file=sys.stderr)
        return exc.code
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
    if opts.wait_s is not None:
        print(f"xmail-sendmail: {outcome(root, message_id, opts.wait_s)}", file=sys.stderr)
    # Whatever the first attempt did, the message is accepted: the outbox has it.
    return EX_OK


def first_status(root: str, message_id: str, wait_s: float) -> dict | None:
    """The status the delivery writes after its first round, or None within ``wait_s``."""
    import json

    path = status_path(root, message_id)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with open(path, encoding="utf-8") as file:
                return json.loads(file.read())
        except (OSError, ValueError):  # not written yet
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(POLL_S, left))


def outcome(root: str, message_id: str, wait_s: float) -> str:
    status = first_status(root, message_id, wait_s)
    if status is None:
        return f"in the outbox; no delivery attempt within {wait_s:g} s (is the worker running?)"
    state, reason = status.get("state"), status.get("reason") or "no reason given"
    if state == "delivered":
        command = status.get("command")
        return f"delivered through {command}" if command else "delivered"
    if state == "bounced":
        return f"the server refused it: {reason}; the sender gets a notice"
    if state == "waiting":
        return (
            f"in the outbox, not yet delivered: {reason}; next try {when(status.get('next_try'))}"
        )
    return f"in the outbox ({state}): {reason}"


def when(iso: str | None) -> str:
    """The next try in the submitter's local time."""
    from datetime import datetime

    try:
        at = datetime.fromisoformat(iso or "").astimezone()
    except ValueError:
        return "soon"
    return f"at {at:%Y-%m-%d %H:%M:%S %Z}".rstrip()
