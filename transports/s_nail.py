"""``s-nail`` (14.x and 15.x), the maintained heir of Heirloom mailx, with its own SMTP.

The password goes into a 0600 resource file named by ``MAILRC``; argv holds
only the user and host of the ``mta`` URL.
"""

from __future__ import annotations

import re

from .base import Target
from .command import CommandTransport, Invocation
from .message import with_utf8_headers
from .secrecy import PrivateDir


def rc_quote(value: str) -> str:
    """sh-style single quotes, the way s-nail's resource files parse them."""
    return "'" + value.replace("'", "'\\''") + "'"


class SNail(CommandTransport):
    key = "snail14"
    binary = "s-nail"
    tls_pattern = re.compile(r"TLS connection using (TLSv[\d.]+)")
    # Measured with s-nail 14.9.24 -t. It also garbles an already RFC 2047 encoded
    # subject, which is why it is handed UTF-8 headers.
    rewrites = (
        "s-nail adds a second Date and MIME-Version, a contradicting second Content-Type "
        "(us-ascii) and User-Agent (the vendor's 'faulty processing')"
    )

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        rc = tmp.write("mailrc", f"set password={rc_quote(target.password)}\n")
        scheme = "smtps" if target.implicit_tls else "smtp"
        argv = [
            exe, "-n", "-Sv15-compat", "-Snosave", "-Ssendwait", "-Sverbose",
            "-Sttycharset=utf-8", "-Sexpandaddr=fail,-all,+addr",
            f"-Smta={scheme}://{target.user}@{target.url_host}:{target.port}",
            "-Ssmtp-auth=plain", f"-Ssmtp-hostname={target.helo}", f"-Sfrom={target.sender}",
        ]  # fmt: skip
        if not target.implicit_tls:
            argv.append("-Ssmtp-use-starttls")
        if target.ca_file:
            argv += [f"-Stls-ca-file={target.ca_file}", "-Stls-ca-no-defaults"]
        if not target.verify:
            argv.append("-Stls-verify=ignore")
        return Invocation([*argv, "-t"], stdin=with_utf8_headers(message), env={"MAILRC": rc})


class SNail15(SNail):
    key = "snail15"
