#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Send messages over SMTP with TLS and AUTH; shipped with xmailadmin.

Runs on Python 2.7 and 3.x alike (older servers still have only ``python``
2.7), so: no f-strings, no type hints, and our own TLS wrapping, because
smtplib of 2.7 neither verifies certificates nor takes an SSL context.

The password never comes through argv: it is read from --password-file
(``-`` = the first line of standard input).

Prints the SMTP dialogue to stderr (long lines cut) and, as the last line
of stdout, ``XMAILADMIN-RESULT {json}``. Exit codes: 0 sent, 2 usage,
3 AUTH, 4 TLS, 5 connect, 6 MAIL FROM, 7 RCPT TO, 8 DATA, 9 EHLO, 10 timeout.

``--batch FILE`` instead of ``--to`` and ``--message`` sends many messages over
one connection (one TLS handshake, one AUTH). FILE holds one JSON object a line,
``{"to": "rcpt@example", "message": "/path/to/file.eml"}``. Before the dialogue
of item N (0-based) stderr gets the line ``XMAILADMIN-ITEM N``; when item N ends,
stdout gets ``XMAILADMIN-RESULT {json}`` with ``"item": N``. A refusal (4xx/5xx)
fails its item only; a failure of the connection fails the item under way and
all after it. The exit code is that of the first failed item, 0 when all went.
"""
from __future__ import print_function

import argparse
import base64
import json
import smtplib
import socket
import ssl
import sys

PY2 = sys.version_info[0] == 2
# ssl.match_hostname before 3.5 compares DNS names only: an IP literal never matches,
# not even the certificate's "IP Address" entry for it. Python 3.7+ has OpenSSL check.
OWN_IP_CHECK = sys.version_info < (3, 5)
# RFC 5321 allows 512 bytes a reply line; smtplib limits each line (8 KB) but not how many
# lines one reply has, and 2.7 reads a TLS reply byte by byte: a reply of megabytes
# would keep it busy past the time limit.
REPLY_LIMIT = 64 * 1024
EXIT = {"done": 0, "auth": 3, "tls": 4, "connect": 5, "mail_from": 6, "rcpt_to": 7,
        "data": 8, "ehlo": 9, "timeout": 10}
RESULT_PREFIX = "XMAILADMIN-RESULT "
ITEM_MARKER = "XMAILADMIN-ITEM %d"
TEXT = type(u"")  # unicode on 2.7, where json gives unicode and argv gives bytes


class CutLines(object):
    """A stderr that keeps each line short: smtplib's debug output holds the whole message."""

    def __init__(self, stream, limit=300):
        self.stream, self.limit = stream, limit

    def write(self, text):
        for line in text.splitlines(True):
            if len(line) > self.limit:
                line = line[:self.limit] + "...[%d characters]\n" % len(line)
            self.stream.write(line)

    def flush(self):
        self.stream.flush()


class ReplyTooLong(Exception):
    """Not an OSError: smtplib would turn that into "Connection unexpectedly closed"."""


class LimitedReplies(object):
    """The file smtplib reads replies from, refusing a reply longer than REPLY_LIMIT."""

    def __init__(self, fh):
        self.fh, self.used = fh, 0

    def readline(self, *size):
        line = self.fh.readline(*size)
        self.used += len(line)
        if self.used > REPLY_LIMIT:
            raise ReplyTooLong("the server's reply is longer than %d bytes" % REPLY_LIMIT)
        return line

    def close(self):
        self.fh.close()


def packed_ip(text):
    """The address in bytes when ``text`` is an IPv4 or IPv6 literal, else None
    (no ``ipaddress`` on 2.7)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, text.strip())
        except (socket.error, ValueError, UnicodeError):
            pass
    return None


def match_ip(cert, address):
    """RFC 6125: an IP address must be one of the certificate's "IP Address" entries."""
    wanted = packed_ip(address)
    listed = [v for k, v in cert.get("subjectAltName", ()) if k == "IP Address"]
    if not any(packed_ip(v) == wanted for v in listed):
        raise ssl.CertificateError(
            "IP address mismatch, certificate is not valid for %r (IP entries: %s)"
            % (address, ", ".join(listed) or "none"))


class Client(smtplib.SMTP):
    """smtplib.SMTP that verifies the server certificate on Python 2.7 too."""

    def __init__(self, context, server_name, implicit, timeout, helo):
        self._context, self._server_name, self._implicit = context, server_name, implicit
        # Checked here after the handshake instead: see OWN_IP_CHECK.
        self._check_ip = (OWN_IP_CHECK and context.check_hostname
                          and packed_ip(server_name) is not None)
        if self._check_ip:
            context.check_hostname = False
        self.stage = "connect"  # the SMTP step under way, for the error report
        # What a timeout waited for: the stage, or finer (greeting, handshake, message).
        self.waiting = "connect"
        smtplib.SMTP.__init__(self, local_hostname=helo, timeout=timeout)

    def _wrap(self, sock):
        sock = self._context.wrap_socket(sock, server_hostname=self._server_name)
        if self._check_ip:
            match_ip(sock.getpeercert(), self._server_name)
        self.file = smtplib.SSLFakeFile(sock) if PY2 else None
        return sock

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        self.waiting = "greeting"
        if not self._implicit:
            return sock
        self.stage, self.waiting = "tls", "handshake"
        sock = self._wrap(sock)
        self.stage, self.waiting = "connect", "greeting"  # the greeting belongs to connecting
        return sock

    def at(self, stage):
        self.stage = self.waiting = stage

    def getreply(self):
        if self.file is None:
            self.file = self.sock.makefile("rb")
        if not isinstance(self.file, LimitedReplies):
            self.file = LimitedReplies(self.file)
        self.file.used = 0  # each reply has the whole limit
        code, reply = smtplib.SMTP.getreply(self)
        if self.waiting == "data" and code == 354:
            self.waiting = "message"  # the reply to the message's end comes next
        return code, reply

    def starttls_verified(self):
        self.ehlo_or_helo_if_needed()
        if not self.has_extn("starttls"):
            self.stage = "ehlo"  # what the EHLO reply says, not a failed handshake
            raise smtplib.SMTPException("the server does not offer STARTTLS")
        self.waiting = "starttls"
        code, reply = self.docmd("STARTTLS")
        if code != 220:
            raise smtplib.SMTPResponseException(code, reply)
        self.waiting = "handshake"
        self.sock = self._wrap(self.sock)
        # RFC 3207: forget what the server said before TLS.
        self.helo_resp = self.ehlo_resp = None
        self.esmtp_features = {}
        self.does_esmtp = 0


def b64(text):
    data = text.encode("utf-8") if not isinstance(text, bytes) else text
    return base64.b64encode(data).decode("ascii")


def login(client, user, password):
    """AUTH PLAIN or LOGIN in UTF-8; smtplib's own login only takes ASCII on Python 3."""
    if PY2:
        user = user.decode("utf-8") if isinstance(user, bytes) else user
        password = password.decode("utf-8") if isinstance(password, bytes) else password
    client.ehlo_or_helo_if_needed()
    methods = client.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" in methods:
        code, reply = client.docmd("AUTH", "PLAIN " + b64(u"\0" + user + u"\0" + password))
    elif "LOGIN" in methods:
        code, reply = client.docmd("AUTH", "LOGIN " + b64(user))
        if code == 334:
            code, reply = client.docmd(b64(password))
    else:
        return client.login(user, password)  # CRAM-MD5 and friends
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, reply)
    return code, reply


def read_password(path):
    if path == "-":
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
        line = stdin.readline()
    else:
        with open(path, "rb") as fh:
            line = fh.readline()
    return line.decode("utf-8").rstrip(u"\r\n")


def tls_context(ca_file, verify=True):
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = verify
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    if hasattr(ssl, "TLSVersion"):
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_version(client):
    sock = getattr(client, "sock", None)
    return sock.version() if hasattr(sock, "version") else None


def new_client(args):
    client = Client(tls_context(args.ca_file, not args.insecure), args.host, args.mode == "smtps",
                    args.timeout, args.helo)
    client.set_debuglevel(1)
    return client


def open_session(client, args, password):
    """Connect, TLS, EHLO and AUTH; return the TLS version."""
    client.connect(args.host, args.port)
    client.at("ehlo")
    client.ehlo()
    if args.mode == "starttls":
        client.at("tls")
        client.starttls_verified()
        client.at("ehlo")
        client.ehlo()
    tls = tls_version(client)
    client.at("auth")
    login(client, args.user, password)
    return tls


def deliver(client, sender, recipient, message):
    """MAIL FROM, RCPT TO and DATA of one message; raises at the first refusal."""
    client.at("mail_from")
    code, reply = client.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    client.at("rcpt_to")
    code, reply = client.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    client.at("data")
    code, reply = client.data(message)
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)
    client.stage = "done"


def quit_quietly(client):
    try:
        client.quit()
    except (smtplib.SMTPException, socket.error):
        pass  # what was accepted stays accepted; a rude goodbye does not undo that


def failed(client, tls, exc):
    """The result of a failure, by the step it happened in, with the server's words."""
    if isinstance(exc, socket.timeout):
        state = timed_out(client, tls)
    elif isinstance(exc, (ssl.SSLError, getattr(ssl, "CertificateError", ssl.SSLError))):
        state = {"step": "tls", "tls_version": tls}
    elif "timed out" in str(exc):  # smtplib turns a read timeout into "disconnected"
        state = timed_out(client, tls)
    else:  # every other failure belongs to the step it happened in
        state = {"step": client.stage, "tls_version": tls}
    state["error"] = described(exc)
    print(state["error"], file=sys.stderr)
    return state


def refused(exc):
    """Whether the server refused with a reply of its own (4xx/5xx), after which the
    connection serves the next message; anything else (a closed connection, a timeout,
    a reply that is no SMTP) leaves the dialogue in a state nobody knows."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code = list(exc.recipients.values())[0][0]
    elif isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
    else:
        return False
    return 400 <= code < 600


def send(args, password, message):
    """The result of one send; result["step"] is where it stopped, "done" when sent."""
    client = new_client(args)
    tls = None
    try:
        tls = open_session(client, args, password)
        deliver(client, args.sender, args.recipient, message)
    except Exception as exc:
        return failed(client, tls, exc)
    quit_quietly(client)
    return {"step": "done", "tls_version": tls}


def read_message(path):
    with open(path, "rb") as fh:
        # smtplib sends bytes as they are: bare LFs would reach the server.
        return fh.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def read_batch(path):
    """The items of a batch file; ValueError names the line that is no item."""
    items = []
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError is one too
                item = None
            if not (isinstance(item, dict)
                    and all(isinstance(item.get(k), TEXT) for k in ("to", "message"))):
                raise ValueError('line %d of the batch file is no {"to": ..., "message": ...}'
                                 % number)
            if PY2:  # 2.7's smtplib and ssl want native strings
                item = {"to": item["to"].encode("utf-8"), "message": item["message"]}
            items.append(item)
    if not items:
        raise ValueError("the batch file holds no item")
    return items


def report(state, item=None):
    """One result line; flushed at once, so what ended before a kill is still known."""
    if item is not None:
        state = dict(state, item=item)
    sys.stderr.flush()
    sys.stdout.write(RESULT_PREFIX + json.dumps(state, sort_keys=True) + "\n")
    sys.stdout.flush()


def send_batch(args, password, items):
    """Every item over one connection, each reported as it ends; the results in order."""
    client = new_client(args)
    tls = None
    try:
        tls = open_session(client, args, password)
    except Exception as exc:
        # Nothing of any item was sent: every one has this result.
        state = failed(client, tls, exc)
        for n in range(len(items)):
            report(state, n)
        return [state] * len(items)
    results = []
    ended = None  # the failure that ended the connection: the result of every later item
    in_transaction = False  # a failed item may have left MAIL FROM / RCPT TO open: RSET first
    for n, item in enumerate(items):
        print(ITEM_MARKER % n, file=sys.stderr)
        if ended is not None:
            print("[xmailadmin] not sent: the connection ended before this message",
                  file=sys.stderr)
            state = ended
        else:
            state = send_item(client, args.sender, item, tls, in_transaction)
            in_transaction = state["step"] != "done"
            if state.pop("ended", False):
                ended = state
        report(state, n)
        results.append(state)
    if ended is None:
        quit_quietly(client)
    else:
        client.close()
    return results


def send_item(client, sender, item, tls, in_transaction):
    """One item of a batch; "ended": True in the result when the connection is lost."""
    try:
        message = read_message(item["message"])
    except (IOError, OSError) as exc:  # nothing was sent: the next item goes on as usual
        state = {"step": "config", "tls_version": tls, "error": described(exc)}
        print(state["error"], file=sys.stderr)
        return state
    try:
        if in_transaction:
            client.at("mail_from")  # the RSET readies the next MAIL FROM
            code, reply = client.rset()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
        deliver(client, sender, item["to"], message)
    except Exception as exc:
        state = failed(client, tls, exc)
        if not refused(exc):
            state["ended"] = True
        return state
    return {"step": "done", "tls_version": tls}


def timed_out(client, tls):
    return {"step": "timeout", "failed_at": client.stage, "waited_for": client.waiting,
            "tls_version": tls}


def described(exc):
    """The failure with the server's reply as it said it ("553 5.7.1 <a@b>: ..."), not
    the repr of smtplib's dict of recipients and byte strings."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, reply = list(exc.recipients.values())[0]
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, exc.smtp_error
    else:
        return "%s: %s" % (type(exc).__name__, exc)
    if not PY2 and isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return "%s: %s %s" % (type(exc).__name__, code, reply)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("smtps", "starttls"))
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--from", dest="sender", required=True)
    parser.add_argument("--to", dest="recipient")
    parser.add_argument("--ca-file")
    parser.add_argument("--insecure", action="store_true", help="do not check the certificate")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--helo", default=socket.getfqdn())
    parser.add_argument("--message", help="file with the RFC 5322 message")
    parser.add_argument("--batch", help='file with one {"to": ..., "message": ...} a line')
    args = parser.parse_args(argv)
    single = args.recipient is not None and args.message is not None
    if single == (args.batch is not None) or (args.recipient is None) != (args.message is None):
        parser.error("give either --to and --message, or --batch")
    args.mode = args.mode or ("smtps" if args.port == 465 else "starttls")
    if args.batch is not None:
        try:
            items = read_batch(args.batch)
        except (IOError, OSError, ValueError) as exc:
            parser.error(str(exc))
    sys.stderr = smtplib.stderr = CutLines(sys.stderr)  # 2.7's smtplib prints to its own name
    password = read_password(args.password_file)
    if args.batch is None:
        state = send(args, password, read_message(args.message))
        report(state)
        return EXIT.get(state["step"], 1)
    failures = [s for s in send_batch(args, password, items) if s["step"] != "done"]
    return EXIT.get(failures[0]["step"], 1) if failures else 0


if __name__ == "__main__":
    sys.exit(main())
