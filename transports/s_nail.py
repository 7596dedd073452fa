"""``s-nail`` (14.x and 15.x), the maintained heir of Heirloom mailx, with its own SMTP.

The password goes into a 0600 resource file named by ``MAILRC``; argv holds
only the user and host of the ``mta`` URL.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.parse

from . import tlsinfo
from .base import Target, config_value
from .command import CommandTransport, Invocation
from .detection import Detection
from .message import with_utf8_headers
from .run import run
from .secrecy import PrivateDir
from .texts import Text, gettext_noop
from .tlsinfo import RunFn
from .versions import VersionInfo


def parse_snail_version(text: str) -> VersionInfo:
    """``s-nail -V``, or ``s-nail -:/ -Sverbose -Xversion -Xx`` for features and link line.

    s-nail names no library, but ``+tls``/``-tls`` says whether it has TLS and the verbose
    ``Link:`` line shows what it was linked with.

    >>> parse_snail_version("s-nail v14.9.24, 2022-03-26 (built for Linux)\\n +smtp +tls\\n"
    ...                     "Link: cc -pie -lssl -lcrypto -lidn2")
    VersionInfo(version='14.9.24', library='OpenSSL', library_version=None)
    >>> parse_snail_version("s-nail v14.9.24, 2022-03-26\\n +smtp -tls\\n")
    VersionInfo(version='14.9.24', library='none', library_version=None)
    """
    text = text or ""
    version = re.search(r"s-nail\s+v?(\d+(?:\.\d+)+)", text, re.IGNORECASE)
    tokens = set(text.split())
    library = None
    if "-tls" in tokens:
        library = "none"
    elif "-lssl" in tokens:
        library = "OpenSSL"
    elif "-lgnutls" in tokens:
        library = "GnuTLS"
    return VersionInfo(version and version.group(1), library)


def rc_quote(value: str) -> str:
    """sh-style single quotes, the way s-nail's resource files parse them (one line)."""
    return "'" + config_value(value).replace("'", "'\\''") + "'"


# Each send asks which s-nail it has (14 and 15 are different rows): one process start
# per send for an answer that changes only when the binary does. Keyed by the file's
# identity, so an upgrade in place is seen; an unknown answer is asked again next time.
_MAJOR: dict[tuple[str, int, int, int], int] = {}
_MAJOR_LOCK = threading.Lock()


def major_version(exe: str) -> int | None:
    """s-nail's major version from ``s-nail -V`` ("s-nail v14.9.24, ..."), asked once
    per binary."""
    try:
        st = os.stat(exe)
    except OSError:
        return None
    key = (os.path.realpath(exe), st.st_ino, st.st_mtime_ns, st.st_size)
    with _MAJOR_LOCK:
        if key in _MAJOR:
            return _MAJOR[key]
    out = run([exe, "-V"], timeout=5)
    match = re.search(r"\bv?(\d+)\.\d+", out.text)
    if match is None:
        return None
    with _MAJOR_LOCK:
        _MAJOR[key] = int(match.group(1))
    return _MAJOR[key]


class SNail(CommandTransport):
    key = "snail14"
    binary = "s-nail"
    major = 14
    # -:/ keeps s-nail from reading any rc file; -Sverbose adds the "Link:" line.
    version_args = (("-:/", "-Sverbose", "-Xversion", "-Xx"), ("-V",))
    parse_version = staticmethod(parse_snail_version)
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

    @classmethod
    def detect(cls, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
        """One s-nail serves one of the two rows: the one of its major version."""
        det = super().detect(executable, run_fn=run_fn)
        parsed = tlsinfo.parse_version(det.version)
        if det.found and parsed and parsed[0] != cls.major:
            other = Detection(key=cls.key, found=False)
            other.add_note(
                Text(gettext_noop("installed s-nail is %(version)s"), {"version": det.version})
            )
            return other
        if det.found and parsed is None:
            det.add_note(Text(gettext_noop("s-nail version unknown: cannot tell 14.x from 15.x")))
        return det

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
