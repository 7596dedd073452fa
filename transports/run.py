"""Every subprocess of the product goes through :func:`run` (or :func:`start_tied`).

An argument list (never a shell), a hard timeout that kills the whole
process group (s-nail, mutt and mailutils fork helpers and hang forever on a
protocol mismatch), captured output, and a scrubbed environment so that no
secret of ours can leak into a child's ``/proc/PID/environ``.

Every child is tied to the process that started it, so that a worker killed
mid-send (SIGKILL, the OOM killer, Celery's hard time limit) leaves no tool
running and no secret folder behind:

- the child gets ``PR_SET_PDEATHSIG(SIGKILL)``: it dies with the thread that
  started it (that thread waits for it, so: with our process);
- helpers the tool forked (s-nail's SMTP child, msmtp's ``passwordeval`` shell)
  are not covered by that, so each process also keeps one *guardian*: a small
  Python process in its own session that learns every process group and private
  folder we start (over a pipe) and, when the pipe reaches EOF because we are
  gone, SIGKILLs those groups and removes those folders.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GRACE_SECONDS = 2.0
# A non-root PATH lacks these, but postconf, exim4 and sendmail live there.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
# What a mail command needs from the environment; everything else is dropped.
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


# --- the tie to our process ------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()
_KILL = ctypes.c_ulong(signal.SIGKILL)
_ZERO = ctypes.c_ulong(0)


def _die_with(parent: int, guardian_fd: int | None) -> Callable[[], None]:
    """The child's preexec_fn (after setsid, before exec): SIGKILL when the starting
    thread ends; end at once if the parent died between fork and here; and tell the
    guardian our group ourselves, so that it knows the group before the tool can fork a
    helper (the parent tells it again after Popen returns). Only a prctl, getppid,
    sigaction and a write to a pipe: nothing that takes a lock another thread might hold."""

    def tie() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, _KILL, _ZERO, _ZERO, _ZERO)
        if os.getppid() != parent:
            os._exit(137)
        if guardian_fd is not None:
            # A guardian that just died must not kill us with SIGPIPE (Popen has reset
            # it to the default already, as the tool gets it): EPIPE instead, and the
            # parent starts a new guardian that is told the whole list.
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
            with contextlib.suppress(OSError):
                os.write(guardian_fd, b"+g %d\n" % os.getpid())
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)

    return tie


# The guardian: reads "+g PGID", "-g PGID", "+d PATH", "-d PATH" lines; at EOF (the
# process that wrote them is gone) it SIGKILLs the groups still listed and, once they
# are gone (or after a second), removes the folders still listed. It ignores the
# signals a service stop sends to everyone, so it outlives the tools and cleans up
# after them; -I -S: no site, no user paths, no PYTHON* variables.
_GUARDIAN = r"""
import os, shutil, signal, time
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, signal.SIG_IGN)
groups, folders, buf = set(), set(), b""
while True:
    try:
        chunk = os.read(0, 65536)
    except InterruptedError:
        continue
    if not chunk:
        break
    *lines, buf = (buf + chunk).split(b"\n")
    for line in lines:
        op, _, arg = line.partition(b" ")
        if op == b"+g":
            groups.add(int(arg))
        elif op == b"-g":
            groups.discard(int(arg))
        elif op == b"+d":
            folders.add(arg)
        elif op == b"-d":
            folders.discard(arg)
for g in groups:
    try:
        os.killpg(g, signal.SIGKILL)
    except OSError:
        pass
end = time.monotonic() + 1.0
while groups and time.monotonic() < end:
    for g in list(groups):
        try:
            os.killpg(g, 0)
        except OSError:
            groups.discard(g)
    time.sleep(0.02)
for f in folders:
    shutil.rmtree(f, ignore_errors=True)
"""


class _Guardian:
    """This process's guardian: started on first use, and again after a fork or its death
    (it is then told the whole list anew)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner = 0  # the pid that started _proc
        self._watched: dict[bytes, set[bytes]] = {b"g": set(), b"d": set()}

    def _start(self) -> None:
        if self._proc is not None:  # a dead one: release its pipe
            if self._proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
            self._proc.poll()
        self._proc = None
        if not sys.executable:
            return
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _GUARDIAN],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=child_env(),
                cwd="/",
                start_new_session=True,  # a kill of our group or session leaves it alone
            )
        except OSError:
            return
        self._proc, self._owner = proc, os.getpid()
        self._write(b"".join(b"+%s %s\n" % (k, v) for k, vs in self._watched.items() for v in vs))

    def _write(self, data: bytes) -> bool:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            if data:
                os.write(self._proc.stdin.fileno(), data)  # one line is < PIPE_BUF: atomic
            return True
        except OSError:  # it died (EPIPE): the caller starts a new one
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            self._proc.poll()
            self._proc = None
            return False

    def _update(self, add: bool, kind: bytes, value: bytes) -> None:
        if b"\n" in value:
            raise ValueError(f"cannot watch a name with a line break: {value!r}")
        with self._lock:
            if self._owner != os.getpid():
                self._proc = None  # inherited through a fork (reset there already, normally)
            watched = self._watched[kind]
            if add:
                watched.add(value)
            else:
                watched.discard(value)
            line = b"%s%s %s\n" % (b"+" if add else b"-", kind, value)
            if self._proc is not None and self._write(line):
                return
            if any(self._watched.values()):
                self._start()  # sends the whole list, this change included

    def watch_group(self, pgid: int) -> None:
        self._update(True, b"g", b"%d" % pgid)

    def forget_group(self, pgid: int) -> None:
        self._update(False, b"g", b"%d" % pgid)

    def watch_folder(self, path: str) -> None:
        self._update(True, b"d", os.fsencode(path))

    def forget_folder(self, path: str) -> None:
        self._update(False, b"d", os.fsencode(path))

    def spawn_fd(self) -> int | None:
        """A private copy (closed on exec) of the pipe to a running guardian, for one
        child to announce itself through; the caller closes it."""
        with self._lock:
            if self._owner != os.getpid():
                self._proc = None
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            if self._proc is None or self._proc.stdin is None:
                return None
            try:
                return os.dup(self._proc.stdin.fileno())
            except OSError:
                return None

    def pid(self) -> int | None:
        """The running guardian's pid, or None (for tests and diagnostics)."""
        proc = self._proc
        return proc.pid if proc is not None and self._owner == os.getpid() else None

    def after_fork_in_child(self) -> None:
        # The parent's guardian is the parent's: close our copy of its pipe (else it
        # would not see EOF when the parent dies) and start our own when needed. The
        # lock may have been held by another thread at the fork: take a new one.
        proc = self._proc
        self.__init__()
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            proc.returncode = 0  # not our child: never wait for it


guardian = _Guardian()
os.register_at_fork(after_in_child=guardian.after_fork_in_child)


def start_tied(argv: Sequence[str], **popen_args: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` in its own session and process group, tied to this process:
    it and its group die with us. End it with :func:`end_group`."""
    fd = guardian.spawn_fd()
    try:
        proc = subprocess.Popen(
            argv,
            start_new_session=True,  # its own process group, so the timeout kills helpers too
            preexec_fn=_die_with(os.getpid(), fd),  # see _die_with: no lock taken there
            **popen_args,
        )
    finally:
        if fd is not None:
            os.close(fd)
    guardian.watch_group(proc.pid)
    return proc


def end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL what is left of the child's process group, reap the child, stop watching."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    guardian.forget_group(proc.pid)


@contextlib.contextmanager
def watched_folder(path: str) -> Iterator[None]:
    """``path`` is removed by the guardian if this process dies before leaving."""
    guardian.watch_folder(path)
    try:
        yield
    finally:
        guardian.forget_folder(path)


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
        proc = start_tied(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(env),
            cwd=cwd,
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
        end_group(proc)
    return RunOutput(
        argv=argv,
        returncode=None if timed_out else proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
    )


# --- finding a command ------------------------------------------------------------------


def which(name: str) -> str | None:
    """``name`` on PATH or in the sbin directories; an absolute path is checked as is."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN_DIRS])
    return shutil.which(name, path=search)


def locate(names: Sequence[str], executable: str | None = None) -> str | None:
    """The first of ``names`` that is installed, or ``executable`` alone when given.

    The one lookup: the probe and the send both find a command through it, so a command
    the probe shows as found is the one a send runs.
    """
    if executable:
        return which(executable)
    return next((path for path in map(which, filter(None, names)) if path), None)
