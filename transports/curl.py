"""``curl`` speaking SMTP itself (libcurl): smtps:// or smtp:// with --ssl-reqd."""

from __future__ import annotations

import re

from .base import Step, Target, config_value
from .classify import CLOSED, TOO_LONG
from .command import CommandTransport, Invocation
from .run import RunOutput
from .secrecy import PrivateDir
from .versions import VersionInfo, canonical_library

# curl's exit codes (man curl, "EXIT CODES") that name the step.
EXIT_STEPS = {
    6: Step.CONNECT, 7: Step.CONNECT, 28: Step.TIMEOUT, 35: Step.TLS, 51: Step.TLS,
    53: Step.TLS, 54: Step.TLS, 58: Step.TLS, 59: Step.TLS, 60: Step.TLS, 64: Step.TLS,
    66: Step.TLS, 67: Step.AUTH, 77: Step.TLS, 80: Step.TLS, 83: Step.TLS, 90: Step.TLS,
    91: Step.TLS,
}  # fmt: skip
# For 55/56 and friends curl names the SMTP command that was refused.
REFUSED = [
    (re.compile(r"MAIL failed", re.I), Step.MAIL_FROM),
    (re.compile(r"RCPT failed", re.I), Step.RCPT_TO),
    (re.compile(r"DATA|upload|send failure", re.I), Step.DATA),
]


def _without_brackets(text: str) -> str:
    return re.sub(r"\([^)]*\)", " ", text)


def parse_curl_version(text: str) -> VersionInfo:
    """First line of ``curl -V``: the TLS backend is the ``Name/version`` token.

    A curl built with several backends lists the inactive ones in brackets; those are skipped.

    >>> parse_curl_version("curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 "
    ...                    "OpenSSL/3.0.19 zlib/1.2.13 (+libidn2/2.3.3)")
    VersionInfo(version='7.88.1', library='OpenSSL', library_version='3.0.19')
    >>> parse_curl_version("curl 7.29.0 (x86_64-redhat-linux-gnu) libcurl/7.29.0 NSS/3.44 zlib")
    VersionInfo(version='7.29.0', library='NSS', library_version='3.44')
    """
    first = (text or "").strip().splitlines()[:1]
    line = first[0] if first else ""
    version = re.match(r"curl\s+(\S+)", line)
    for token in _without_brackets(line).split()[1:]:
        name, _, number = token.partition("/")
        library = canonical_library(name)
        if library and library != "none":
            return VersionInfo(version and version.group(1), library, number or None)
    return VersionInfo(version and version.group(1))


def config_line(name: str, value: str) -> str:
    """One line of a curl config file (-K), quoted the way curl parses it."""
    escaped = config_value(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'{name} = "{escaped}"\n'


class Curl(CommandTransport):
    key = "curl"
    binary = "curl"
    version_args = (("-V",),)
    parse_version = staticmethod(parse_curl_version)
    exit_steps = EXIT_STEPS
    tls_pattern = re.compile(r"SSL connection using (TLSv[\d.]+|SSLv\d)")

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        crlf = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        scheme = "smtps" if target.implicit_tls else "smtp"
        # The URL's path is the EHLO name; without it curl says "EHLO <file name>".
        url = f"{scheme}://{target.url_host}:{target.port}/{target.helo}"
        argv = [
            exe, "--verbose", "--show-error", "--silent", "--config", "-",
            "--url", url, "--mail-from", target.sender, "--mail-rcpt", target.recipient,
            "--upload-file", tmp.write("message.eml", crlf), "--tlsv1.2",
            "--connect-timeout", str(max(1, int(target.timeout / 3))),
            "--max-time", str(max(1, int(target.timeout - 1))),
        ]  # fmt: skip
        if not target.implicit_tls:
            argv.append("--ssl-reqd")
        if target.ca_file:
            argv += ["--cacert", target.ca_file]
        if not target.verify:
            argv.append("--insecure")
        # The password travels on stdin as a config line, never in argv.
        config = config_line("user", f"{target.user}:{target.password}")
        return Invocation(argv, stdin=config.encode())

    def step_for(self, out: RunOutput) -> Step | None:
        errors = [ln for ln in out.stderr.splitlines() if ln.startswith("curl:")]
        # A connection that ended ("response reading failed", "Send failure: Broken pipe")
        # or a reply too long (56 "Too large response headers") can happen at any command:
        # the transcript shows which (classify.broken_off), not the exit code.
        if errors and (CLOSED.search(errors[-1]) or TOO_LONG.search(errors[-1])):
            return None
        if out.returncode in (8, 26, 55, 56) and errors:
            for pattern, step in REFUSED:
                if pattern.search(errors[-1]):
                    return step
        return super().step_for(out)
