"""Mail commands that run one of the send scripts shipped in ``transports/scripts``.

The Python and Perl scripts share one interface: options in argv, the
password on the first line of stdin, the message in a 0600 file, the SMTP
dialogue on stderr, and ``XMAILADMIN-RESULT {json}`` as the last stdout line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from .base import SENT, SendResult, Step, Target, tls_name
from .classify import failed_at, failure, key_line, timed_out_run
from .command import CommandTransport, Invocation
from .detection import Detection, located
from .run import RunOutput
from .secrecy import PrivateDir
from .tlsinfo import CachedRun, RunFn

SCRIPTS = Path(__file__).resolve().parent / "scripts"
RESULT_PREFIX = "XMAILADMIN-RESULT "


def script_result(out: RunOutput) -> dict:
    for line in reversed(out.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            try:
                return json.loads(line[len(RESULT_PREFIX) :])
            except ValueError:
                break
    return {}


class ScriptTransport(CommandTransport):
    script: ClassVar[str]

    @classmethod
    def detect(cls, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
        """The interpreter, and what :meth:`inspect` learns from it about its TLS."""
        run_fn = run_fn or CachedRun()
        det, exe = located(cls.key, cls.names(), executable, run_fn)
        if exe is not None:
            cls.inspect(det, exe, run_fn)
        return det

    @classmethod
    def inspect(cls, det: Detection, exe: str, run_fn: RunFn) -> None:
        """Version, TLS library and missing parts, as the interpreter itself reports them."""
        raise NotImplementedError

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        # --name=value: a value starting with "-" (a user "--help@x") stays a value.
        options = {
            "host": target.host, "port": str(target.port), "mode": target.mode.value,
            "user": target.user, "password-file": "-",
            "from": target.sender, "to": target.recipient,
            # The script's own socket timeout fires first and names the step it hung in.
            "timeout": f"{max(1.0, target.timeout - 2):g}",
            "helo": target.helo, "message": tmp.write("message.eml", message),
        }  # fmt: skip
        if target.ca_file:
            options["ca-file"] = target.ca_file
        argv = [exe, str(SCRIPTS / self.script), *(f"--{k}={v}" for k, v in options.items())]
        if not target.verify:
            argv.append("--insecure")
        return Invocation(argv, stdin=target.password.encode() + b"\n")

    def outcome(self, out: RunOutput, target: Target) -> SendResult:
        state = script_result(out)
        step = Step(state["step"]) if state.get("step") in Step._value2member_map_ else None
        if out.returncode == 0 and step is Step.DONE:
            result = SendResult(ok=True, step=Step.DONE, reason=SENT, exit_code=0)
        elif step is None or step is Step.DONE:
            result = failure(out, target)
        elif step is Step.TIMEOUT:
            result = timed_out_run(out, target, state.get("waited_for"), state.get("error") or "")
        else:
            detail = state.get("error") or key_line(out.stderr)
            result = failed_at(step, target, detail, exit_code=out.returncode)
        result.tls_version = tls_name(state.get("tls_version"))
        return result
