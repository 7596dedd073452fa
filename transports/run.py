"""Every subprocess of the product goes through :func:`run`.

An argument list (never a shell), a hard timeout that kills the whole
process group (s-nail, mutt and mailutils fork helpers and hang forever on a
protocol mismatch), captured output, and a scrubbed environment so that no
secret of ours can leak into a child's ``/proc/PID/environ``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# What a mail command needs from the environment; everything else is dropped.
GRACE_SECONDS = 2.0
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYENV_VERSION", "PYENV_ROOT")


@dataclass
class RunOutput:
    argv: list[str]
    returncode: int | None  # None when killed at the timeout or never started
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    error: str = ""  # the command could not be started

    @property
    def text(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    env.setdefault("LANG", "C.UTF-8")
    if extra:
        env.update(extra)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """What the killed group wrote. A helper that started its own session (exim's
    delivery process) survives the group kill and may hold our pipes open: stop
    waiting for it after a moment rather than hang."""
    try:
        return proc.communicate(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()
        return b"", b""


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> RunOutput:
    """Run ``argv`` and return its output; never raises for the child's failures."""
    argv = [str(a) for a in argv]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(env),
            cwd=cwd,
            start_new_session=True,  # its own process group, so the timeout kills helpers too
        )
    except OSError as exc:
        return RunOutput(argv, None, "", "", time.monotonic() - start, error=str(exc))
    timed_out = False
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = _drain(proc)
    finally:
        # Helpers a tool left behind die with it.
        _kill_group(proc)
    return RunOutput(
        argv=argv,
        returncode=None if timed_out else proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
    )
