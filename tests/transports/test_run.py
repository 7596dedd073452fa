"""The one subprocess helper: timeouts end the whole group and never hang."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from transports import secrecy
from transports.run import run


def test_a_timeout_kills_the_command_and_its_children():
    started = time.monotonic()
    out = run(["sh", "-c", "sleep 30 & sleep 30"], timeout=1)

    assert out.timed_out and out.returncode is None
    assert time.monotonic() - started < 5


def test_a_helper_in_its_own_session_holding_the_pipes_does_not_hang_the_caller():
    started = time.monotonic()
    out = run(["sh", "-c", "setsid sleep 30 & echo started; sleep 30"], timeout=1)

    assert out.timed_out
    assert time.monotonic() - started < 1 + 2 + 2  # timeout + grace + margin


def test_the_child_sees_no_secret_from_our_environment(monkeypatch):
    monkeypatch.setenv("XMAILADMIN_FERNET_KEY", "not-for-children")
    out = run(["env"], timeout=5)

    assert "not-for-children" not in out.stdout
    assert "PATH=" in out.stdout


# --- the tie to the starting process: a SIGKILLed worker leaves nothing behind ----------

REPO = Path(__file__).resolve().parents[2]


def _start_time(pid: int) -> int | None:
    """Start time of a live (not zombie) process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in (b"Z", b"X") else int(fields[19])


def _wait_for(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _parent(code: str, runtime: Path) -> subprocess.Popen[str]:
    """A Python process using transports.run, in its own session like a worker."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "XMAILADMIN_RUNTIME_DIR": str(runtime)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _tool(pids: Path) -> str:
    """A tool that forks a helper, as s-nail forks its SMTP child, and says both pids."""
    return f"sleep 300 & echo $$ $! > {pids}.new && mv {pids}.new {pids}; wait"


@contextlib.contextmanager
def _killed_afterwards(parent: subprocess.Popen[str], pids: Path) -> Iterator[None]:
    """Whatever the test finds, nothing it started stays."""
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        for pid in map(int, pids.read_text().split() if pids.exists() else []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_child_and_its_helpers_die_when_the_parent_is_sigkilled(tmp_path):
    # PDEATHSIG covers the tool (the sh), the guardian its helper (the sleep).
    pids = tmp_path / "pids"
    parent = _parent(
        f"from transports.run import run; run(['sh', '-c', {_tool(pids)!r}], timeout=300)",
        tmp_path / "runtime",
    )
    with _killed_afterwards(parent, pids):
        assert _wait_for(pids.exists), "the child did not start"
        started = {pid: _start_time(pid) for pid in map(int, pids.read_text().split())}
        assert len(started) == 2 and all(started.values())

        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()

        def gone() -> bool:
            return all(_start_time(pid) != when for pid, when in started.items())

        assert _wait_for(gone), "a child outlived its killed parent"


def test_the_private_folder_of_a_sigkilled_process_is_removed(tmp_path):
    pids = tmp_path / "pids"
    code = (
        "from transports.run import run\n"
        "from transports.secrecy import private_dir\n"
        "with private_dir() as tmp:\n"
        "    tmp.write('password', 'geheim-123')\n"
        "    print(tmp.path, flush=True)\n"
        f"    run(['sh', '-c', {_tool(pids)!r}], timeout=300)\n"
    )
    parent = _parent(code, tmp_path / "runtime")
    with _killed_afterwards(parent, pids):
        assert parent.stdout is not None
        folder = Path(parent.stdout.readline().strip())
        assert (folder / "password").read_text() == "geheim-123"
        assert _wait_for(pids.exists)

        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()

        removed = _wait_for(lambda: not folder.exists())
        shutil.rmtree(folder, ignore_errors=True)
        assert removed, "the secret outlived its process"
        # In the product's base folder (here the configured one), 0700.
        assert folder.parent == tmp_path / "runtime"
        assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700


def test_stale_private_folders_are_swept_and_live_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XMAILADMIN_RUNTIME_DIR", str(tmp_path / "runtime"))
    dead = subprocess.Popen(["true"])
    dead.wait()
    ended = subprocess.Popen(["sleep", "0.2"])  # left a zombie: ended, not yet reaped
    ended_start = _start_time(ended.pid)

    def zombie() -> bool:
        return Path(f"/proc/{ended.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z"

    assert _wait_for(zombie)
    base = secrecy.runtime_base()
    stale = base / f"{dead.pid}.1.abcdefgh"  # its pid, and a start time no process has
    reused = base / f"{os.getpid()}.1.abcdefgh"  # our pid, but another start time
    of_zombie = base / f"{ended.pid}.{ended_start}.abcdefgh"  # a killed worker's pool
    other = base / "not-ours"
    for folder in (stale, reused, of_zombie, other):
        folder.mkdir()
        (folder / "password").write_text("x")

    with secrecy.private_dir() as live:
        ended.wait()
        # Swept before a new folder.
        assert not stale.exists() and not reused.exists() and not of_zombie.exists()
        assert other.exists()  # only folders named by us
        assert secrecy.sweep_stale() == []  # a live owner's folder stays
        assert live.path.exists()
    assert not live.path.exists()


def test_a_dead_guardian_is_replaced_and_told_everything_again(tmp_path):
    pids = tmp_path / "pids"
    code = (
        "import os, signal\n"
        "from transports.run import guardian, run\n"
        "from transports.secrecy import private_dir\n"
        "with private_dir() as tmp:\n"
        "    first = guardian.pid()\n"
        "    os.kill(first, signal.SIGKILL)\n"
        "    os.waitpid(first, 0)\n"
        "    guardian._proc.poll = lambda: None  # not noticed: the child finds EPIPE\n"
        "    print(tmp.path, flush=True)\n"
        "    # finds it dead: a new one, told the folder and the new group\n"
        f"    run(['sh', '-c', {_tool(pids)!r}], timeout=300)\n"
    )
    parent = _parent(code, tmp_path / "runtime")
    with _killed_afterwards(parent, pids):
        assert parent.stdout is not None
        folder = Path(parent.stdout.readline().strip())
        assert _wait_for(pids.exists)
        started = {pid: _start_time(pid) for pid in map(int, pids.read_text().split())}

        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()

        assert _wait_for(lambda: not folder.exists())
        assert _wait_for(lambda: all(_start_time(p) != t for p, t in started.items()))
