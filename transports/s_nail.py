"""``s-nail`` (14.x and 15.x), the maintained heir of Heirloom mailx, with its own SMTP.

The password goes into a 0600 resource file named by ``MAILRC``; argv holds
only the user and host of the ``mta`` URL.
"""

from __future__ import annotations

import re
import urllib.parse

from .base import Target, config_value
from .command import CommandTransport, Invocation
from .message import with_utf8_headers
from .run import run
from .secrecy import PrivateDir
from .texts import Text, gettext_noop


def rc_quote(value: str) -> str:
    """sh-style single quotes, the way s-nail's resource files parse them (one line)."""
    return "'" + config_value(value).replace("'", "'\\''") + "'"


def major_version(exe: str) -> int | None:
    """s-nail's major version from ``s-nail -V`` ("s-nail v14.9.24, ...")."""
    out = run([exe, "-V"], timeout=5)
    match = re.search(r"\bv?(\d+)\.\d+", out.text)
    return int(match.group(1)) if match else None


class SNail(CommandTransport):
    key = "snail14"
    binary = "s-nail"
    major = 14
    tls_pattern = re.compile(r"TLS connection using (TLSv[\d.]+)")
    # Measured with s-nail 14.9.24 -t. It also garbles an already RFC 2047 encoded
    # subject, which is why it is handed UTF-8 headers.
    rewrites = Text(
        gettext_noop(
            "s-nail adds a second Date and MIME-Version, a contradicting second Content-Type "
            "(us-ascii) and User-Agent (the vendor's 'faulty processing')"
        )
    )

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        rc = tmp.write("mailrc", f"set password={rc_quote(target.password)}\n")
        scheme = "smtps" if target.implicit_tls else "smtp"
        # v15-compat URLs take the user percent-encoded: "user@example.org" is the usual case.
        user = urllib.parse.quote(target.user, safe="")
        argv = [
            exe, "-n", "-Sv15-compat", "-Snosave", "-Ssendwait", "-vv",
            "-Sttycharset=utf-8", "-Sexpandaddr=fail,-all,+addr",
            f"-Smta={scheme}://{user}@{target.url_host}:{target.port}",
            "-Ssmtp-auth=plain", f"-Shostname={target.helo}", f"-Sfrom={target.sender}",
        ]  # fmt: skip
        if not target.implicit_tls:
            argv.append("-Ssmtp-use-starttls")
        if target.ca_file:
            argv += [f"-Stls-ca-file={target.ca_file}", "-Stls-ca-no-defaults"]
        if not target.verify:
            argv.append("-Stls-verify=ignore")
        return Invocation([*argv, "-t"], stdin=with_utf8_headers(message), env={"MAILRC": rc})

    def other_variant(self, exe: str) -> Text | None:
        # The same detection rule: an unknown version is let through (detection notes it).
        found = major_version(exe)
        if found is not None and found != self.major:
            return Text(
                gettext_noop(
                    "the installed s-nail is version %(found)s, this row is for %(row)s.x"
                ),
                {"found": found, "row": self.major},
            )
        return None


class SNail15(SNail):
    key = "snail15"
    major = 15
