"""``curl`` speaking SMTP itself (libcurl): smtps:// or smtp:// with --ssl-reqd."""

from __future__ import annotations

import re

from .base import Step, Target, config_value
from .classify import CLOSED, TOO_LONG
from .command import CommandTransport, Invocation
from .run import RunOutput
from .secrecy import PrivateDir

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


def config_line(name: str, value: str) -> str:
    """One line of a curl config file (-K), quoted the way curl parses it."""
    escaped = config_value(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'{name} = "{escaped}"\n'


class Curl(CommandTransport):
    key = "curl"
    binary = "curl"
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
