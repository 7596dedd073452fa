"""Mail commands run once per send, the common case: build argv, run, read the outcome."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from . import gnutls_log
from .base import SENT, SendResult, Step, Target, Transport, tls_name
from .classify import failure, staged_by_dialogue
from .run import RunOutput, run
from .secrecy import PrivateDir, private_dir


@dataclass
class Invocation:
    """How to start a mail command: argv (no secrets), stdin, extra environment."""

    argv: list[str]
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)


class CommandTransport(Transport):
    """A mail command run once per send: build the invocation, run it, read the outcome."""

    # Exit codes that name the failing step without doubt; the rest go by the tool's words.
    exit_steps: ClassVar[dict[int, Step]] = {}
    # Where the tool's verbose output names the negotiated TLS version (group 1).
    tls_pattern: ClassVar[re.Pattern[str] | None] = None
    # Tools that print nothing of their TLS session but use GnuTLS: its debug log says.
    gnutls_log: ClassVar[bool] = False

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        raise NotImplementedError

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        with private_dir() as tmp:
            how = self.invocation(exe, target, message, tmp)
            # HOME is the private folder, so no ~/.netrc, ~/.muttrc or ~/.msmtprc interferes.
            env = {"HOME": str(tmp.path), **(gnutls_log.ENV if self.gnutls_log else {}), **how.env}
            out = run(how.argv, stdin=how.stdin, timeout=target.timeout, env=env)
            extra = self.extra_transcript(tmp)
        logged = gnutls_log.negotiated_version(out.stderr) if self.gnutls_log else None
        out = gnutls_log.without_log(out) if self.gnutls_log else out
        transcript = "\n".join(t for t in (out.text, extra) if t)
        result = self.outcome(out, target)
        if extra:  # mutt's dialogue is only in its debug file
            result = staged_by_dialogue(result, transcript, target)
        result.transcript = transcript
        if result.tls_version is None:
            result.tls_version = logged or self.reported_tls(out.text)
        return result

    def reported_tls(self, text: str) -> str | None:
        """The TLS version as the tool's verbose output names it."""
        match = self.tls_pattern.search(text) if self.tls_pattern is not None else None
        return tls_name(match.group(1)) if match else None

    def extra_transcript(self, tmp: PrivateDir) -> str:
        """What the tool wrote to files instead of stdout, read before they are removed."""
        return ""

    def outcome(self, out: RunOutput, target: Target) -> SendResult:
        if out.returncode == 0:
            return SendResult(ok=True, step=Step.DONE, reason=SENT, exit_code=0)
        return failure(out, target, self.step_for(out))

    def step_for(self, out: RunOutput) -> Step | None:
        return self.exit_steps.get(out.returncode) if out.returncode is not None else None
