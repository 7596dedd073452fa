"""``msmtp``: the password comes through its own ``--passwordeval`` from a 0600 file."""

from __future__ import annotations

import re

from .base import Step, Target
from .command import CommandTransport, Invocation
from .secrecy import PrivateDir
from .versions import VersionInfo, canonical_library


def parse_msmtp_version(text: str) -> VersionInfo:
    """``msmtp --version`` names the library but not its version.

    >>> parse_msmtp_version("msmtp version 1.8.23\\nPlatform: x86_64-pc-linux-gnu\\n"
    ...                     "TLS/SSL library: GnuTLS\\n")
    VersionInfo(version='1.8.23', library='GnuTLS', library_version=None)
    """
    version = re.search(r"msmtp version (\S+)", text or "")
    library = re.search(r"TLS/SSL library:\s*(\S+)", text or "")
    name = library and (canonical_library(library.group(1)) or library.group(1))
    return VersionInfo(version and version.group(1), name)


class Msmtp(CommandTransport):
    key = "msmtp"
    binary = "msmtp"
    version_args = (("--version",),)
    parse_version = staticmethod(parse_msmtp_version)
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
