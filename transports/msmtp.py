"""``msmtp``: the password comes through its own ``--passwordeval`` from a 0600 file."""

from __future__ import annotations

import re

from .base import Step, Target
from .command import CommandTransport, Invocation
from .secrecy import PrivateDir


class Msmtp(CommandTransport):
    key = "msmtp"
    binary = "msmtp"
    # sysexits.h as msmtp uses them; only the unambiguous ones, the rest by its words.
    # 74 (EX_IOERR) is not one: msmtp gives it for a timeout ("network read error: the
    # operation timed out") and for a connection the server closed alike.
    exit_steps = {77: Step.AUTH}
    tls_pattern = re.compile(r"\((TLS1\.\d|SSL3\.0)\)")

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        password_file = tmp.write("password", target.password)
        argv = [
            exe, "-C", "/dev/null", "--debug",
            f"--host={target.host}", f"--port={target.port}", "--tls=on",
            f"--tls-starttls={'off' if target.implicit_tls else 'on'}",
            "--auth=on", f"--user={target.user}",
            # msmtp runs this through /bin/sh; the path is ours (mkdtemp), not user input.
            f"--passwordeval=cat {password_file}",
            f"--from={target.sender}", f"--domain={target.helo}",
            f"--timeout={max(1, int(target.timeout - 1))}",
            f"--tls-trust-file={target.ca_file or 'system'}",
            f"--tls-certcheck={'on' if target.verify else 'off'}",
            "--", target.recipient,
        ]  # fmt: skip
        return Invocation(argv, stdin=message)
