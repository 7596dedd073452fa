"""The systemd units (deploy/systemd) and scripts/install-service.sh, without systemd.

This machine and CI are containers: PID 1 is not systemd, so nothing can be started
with systemctl. Instead the tests

- render the units with the script (``--render-only``), have ``systemd-analyze
  verify`` check them (it runs without a systemd PID 1) and check what they promise:
  user, settings file, Restart=on-failure, KillMode, the hardening, the same command
  lines as scripts/run.sh;
- run the real install into a throw-away folder (``SYSTEMD_UNIT_DIR`` for the units,
  ``--env-file`` for the settings), then a second time, which must change nothing;
- start the installed units' exact ExecStart= as systemd would: as their User= and
  Group= (``setpriv``), with exactly their Environment= and EnvironmentFile=, their
  WorkingDirectory=, UMask=, RuntimeDirectory=, NoNewPrivileges= and
  CapabilityBoundingSet=, each under scripts/supervise.sh (the restart systemd does
  for Restart=on-failure); then SIGKILL the worker and watch it come back while the
  web server keeps answering, and uninstall.

What systemd alone does (namespaces of ProtectSystem= and PrivateTmp=, the cgroup of
KillMode=, seccomp) is not emulated; systemd-analyze checks that those lines parse.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "install-service.sh"
SUPERVISE = REPO / "scripts" / "supervise.sh"
SERVICES = ("xmailadmin-web.service", "xmailadmin-worker.service", "xmailadmin-beat.service")
UNITS = (*SERVICES, "xmailadmin.target")
USER = "xmailadmin"
OUTBOX = "/var/spool/xmailadmin/outbox"  # install-service.sh's default outbox
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REDIS_URL = os.environ.get("XMAILADMIN_SERVICE_TEST_REDIS", "redis://127.0.0.1:6379/15")
_LOCK_DIR = "/run/lock" if Path("/run/lock").is_dir() else "/tmp"
LOCK = Path(_LOCK_DIR, "xmailadmin-install-service.lock")  # the script's

# Options that make systemd set no_new_privs for a service whose User= is not root
# (systemd.exec(5), NoNewPrivileges=): each would break postfix's setgid postdrop.
IMPLIES_NO_NEW_PRIVILEGES = (
    "DynamicUser", "LockPersonality", "MemoryDenyWriteExecute", "PrivateDevices",
    "ProtectClock", "ProtectHostname", "ProtectKernelLogs", "ProtectKernelModules",
    "ProtectKernelTunables", "RestrictAddressFamilies", "RestrictNamespaces",
    "RestrictRealtime", "RestrictSUIDSGID", "SystemCallArchitectures", "SystemCallFilter",
    "SystemCallLog",
)  # fmt: skip

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="installs a system user and runs services as it: needs root"
)


# --- reading unit files ------------------------------------------------------------


Unit = dict[str, dict[str, list[str]]]  # section -> key -> values in order


def parse_unit(path: Path) -> Unit:
    """systemd's unit file syntax, as far as these files use it."""
    unit: Unit = {}
    section = None
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):  # continuation
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            unit.setdefault(section, {})
            continue
        assert section, f"{path}: {line!r} outside a section"
        key, _, value = line.partition("=")
        unit[section].setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert values, f"[{section}] {key}= missing"
    return values[-1]


def parse_env_file(path: Path) -> dict[str, str]:
    """EnvironmentFile= syntax as install-service.sh writes it (KEY=value, KEY="v\\"q")."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def unit_environment(unit: Unit, home: str) -> dict[str, str]:
    """What systemd gives the service: the User='s basics, Environment=, then the files."""
    user = one(unit, "Service", "User")
    env = {"HOME": home, "USER": user, "LOGNAME": user, "SHELL": "/usr/sbin/nologin"}
    for item in unit["Service"].get("Environment", []):
        for word in shlex.split(item):
            key, _, value = word.partition("=")
            env[key] = value
    for name in unit["Service"].get("EnvironmentFile", []):
        env.update(parse_env_file(Path(name.lstrip("-"))))
    return env


def exec_start(unit: Unit, env: dict[str, str]) -> list[str]:
    """ExecStart= split as systemd does, with ${VAR} replaced (no bare $VAR used here)."""
    line = one(unit, "Service", "ExecStart")
    assert line[0] not in "-@:+!", f"ExecStart= prefix not expected: {line}"
    assert not re.search(r"\$(?!\{)", line), f"bare $VAR (split on spaces) in {line}"
    assert "%" not in line, f"a specifier in {line}"
    return [re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), w) for w in shlex.split(line)]


def run_sh_commands(port: str = "8000") -> dict[str, list[str]]:
    """The three command lines scripts/run.sh hands to supervise.sh, defaults filled in."""
    text = (REPO / "scripts" / "run.sh").read_text()
    tail = text[text.index("exec scripts/supervise.sh") :].replace("\\\n", " ")
    words = shlex.split(tail.split("\n")[0], posix=False)[2:]  # after exec supervise.sh
    values = {"BIN": ".venv/bin", "BIND": "127.0.0.1", "PORT": port}

    def expand(word: str) -> str:
        word = word.strip('"')
        word = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), word)
        return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], word)

    commands: dict[str, list[str]] = {}
    group: list[str] = []
    for word in [*map(expand, words), "--"]:
        if word == "--":
            commands[group[0]] = group[1:]
            group = []
        else:
            group.append(word)
    return commands


def render(out: Path, *args: str) -> dict[str, Unit]:
    done = subprocess.run(
        [str(SCRIPT), "--render-only", str(out), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return {name: parse_unit(out / name) for name in UNITS}


def analyze_verify(folder: Path) -> None:
    """systemd-analyze verify: no error and no warning about these units."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze is missing (apt-get install systemd; setup.sh test does)")
    done = subprocess.run(
        [binary, "verify", *(str(folder / name) for name in UNITS)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )  # fmt: skip
    output = done.stdout + done.stderr
    ours = [
        line for line in output.splitlines()
        if str(folder) in line or any(name in line for name in UNITS)
    ]  # fmt: skip
    assert not ours, "systemd-analyze verify:\n" + "\n".join(ours)
    # Anything else that fails is about the machine (no manager in this container):
    # then the parsing checks of the callers are what is left.
    if done.returncode != 0:
        print(f"systemd-analyze verify could not run here (exit {done.returncode}):\n{output}")


# --- test 1: the units as rendered -------------------------------------------------


def test_units_render_verify_and_promise_what_they_should(tmp_path):
    # This checkout as the install dir (its venv is there for the binaries that
    # verify checks); the rest are the defaults: user xmailadmin, /etc/xmailadmin/env.
    units = render(tmp_path, "--dir", str(REPO))
    for name in UNITS:
        text = (tmp_path / name).read_text()
        assert not re.search(r"@[A-Z_]+@", text), f"{name}: placeholder left"
    analyze_verify(tmp_path)

    target = units["xmailadmin.target"]
    assert one(target, "Install", "WantedBy") == "multi-user.target"
    assert set(" ".join(target["Unit"]["Wants"]).split()) == set(SERVICES)

    for name in SERVICES:
        unit = units[name]
        service = unit["Service"]
        assert one(unit, "Unit", "PartOf") == "xmailadmin.target", name
        assert one(unit, "Service", "User") == USER, name
        assert one(unit, "Service", "Group") == USER, name
        assert service["EnvironmentFile"] == ["/etc/xmailadmin/env"], name
        assert one(unit, "Service", "Restart") == "on-failure", name
        assert one(unit, "Service", "RestartSec") == "2", name
        # The worker: SIGTERM to it alone on stop (running sends finish), SIGKILL to the rest.
        want = "mixed" if name == "xmailadmin-worker.service" else "control-group"
        assert one(unit, "Service", "KillMode") == want, name
        assert one(unit, "Service", "UMask") == "0077", name
        assert one(unit, "Service", "WorkingDirectory") == str(REPO), name
        assert one(unit, "Service", "PrivateTmp") == "yes", name
        assert one(unit, "Service", "ProtectSystem") in {"full", "strict"}, name
        # The web and the worker change the outbox (retry, discard, delivery); "-" lets
        # a unit start before the outbox exists. Beat only needs var/.
        writes = [str(REPO / "var")]
        if name in ("xmailadmin-web.service", "xmailadmin-worker.service"):
            writes.append(f"-{OUTBOX}")
        assert one(unit, "Service", "ReadWritePaths").split() == writes, name
        env = unit_environment({"Service": {**service, "EnvironmentFile": []}}, "/x")
        assert env["XMAILADMIN_VAR_DIR"] == str(REPO / "var"), name
        argv = exec_start(unit, env)
        assert argv[0].startswith(f"{REPO}/.venv/bin/"), argv

    # The worker runs the mail commands: postdrop (setgid) and exim4 (setuid root)
    # need their bits honoured, so no no_new_privs, directly or implied.
    worker = units["xmailadmin-worker.service"]["Service"]
    assert worker["NoNewPrivileges"] == ["no"]
    implied = sorted(set(worker) & set(IMPLIES_NO_NEW_PRIVILEGES))
    assert not implied, f"the worker would get no_new_privs through {implied}"
    assert "CapabilityBoundingSet" not in worker
    assert one(units["xmailadmin-worker.service"], "Service", "ProtectSystem") == "full"
    for name in ("xmailadmin-web.service", "xmailadmin-beat.service"):
        assert one(units[name], "Service", "NoNewPrivileges") == "yes", name
        assert one(units[name], "Service", "CapabilityBoundingSet") == "", name

    # Exactly run.sh's command lines (beat names its schedule file in var/ as well).
    want = run_sh_commands()
    for name, key in (("web", "web"), ("worker", "worker"), ("beat", "beat")):
        unit = units[f"xmailadmin-{name}.service"]
        argv = exec_start(unit, unit_environment(
            {"Service": {**unit["Service"], "EnvironmentFile": []}}, "/x"))  # fmt: skip
        program, *args = want[key]
        assert argv[0] == f"{REPO}/{program}", (argv, want[key])
        if name == "beat":
            assert args == argv[1:-2], (argv, want[key])
            assert argv[-2:] == ["--schedule", f"{REPO}/var/celerybeat-schedule"]
        else:
            assert argv[1:] == args, (argv, want[key])

    # Another user, folder and settings file end up everywhere they belong.
    other = tmp_path / "other"
    units = render(other, "--user", "mailpanel", "--dir", "/srv/panel", "--env-file", "/etc/p/env")
    for name in SERVICES:
        assert one(units[name], "Service", "User") == "mailpanel"
        assert one(units[name], "Service", "ExecStart").startswith("/srv/panel/.venv/bin/")
        assert units[name]["Service"]["EnvironmentFile"] == ["/etc/p/env"]
        assert one(units[name], "Service", "ReadWritePaths").split()[0] == "/srv/panel/var"


# --- helpers for the install and the running services -------------------------------


def ensure_service_user() -> pwd.struct_passwd:
    """The xmailadmin system user, made as install-service.sh makes it (it may stay)."""
    with open(LOCK, "a") as lock:  # the script's lock: one creator at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return pwd.getpwnam(USER)
        except KeyError:
            if shutil.which("adduser"):
                argv = ["adduser", "--system", "--group", "--home", f"/var/lib/{USER}",
                        "--shell", "/usr/sbin/nologin", "--quiet", USER]  # fmt: skip
            else:
                argv = ["useradd", "--system", "--user-group", "--home-dir", f"/var/lib/{USER}",
                        "--create-home", "--shell", "/usr/sbin/nologin", USER]  # fmt: skip
            subprocess.run(argv, check=True, timeout=60)
            return pwd.getpwnam(USER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], object], what: str, timeout: float, logs: Callable[[], str]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{logs()}")


def http_status(port: int, path: str = "/login/") -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def proc_start_time(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[19])  # field 22: starttime


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every process below root (by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: dict[int, int] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        start = proc_start_time(pid)
        if start is not None:
            found[pid] = start
            todo.extend(children.get(pid, []))
    return found


def kill_if_same(pid: int, start: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a process we started, only if the pid still names that very process."""
    if proc_start_time(pid) != start:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def status_of(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def tree_snapshot(root: Path, skip: set[Path]) -> dict[str, tuple]:
    """Owner, mode, size and mtime of everything under root (in skip: no mtime). SQLite's
    -wal and -shm files come and go with each connection (and so does the folder's mtime)."""
    snap = {}
    for path in [root, *root.rglob("*")]:
        if path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        st = path.lstat()
        mtime = None if path in skip else st.st_mtime_ns
        snap[str(path)] = (st.st_uid, st.st_gid, stat.filemode(st.st_mode), st.st_size, mtime)
    return snap


def db_dump(path: Path) -> list[str]:
    """Every row. Not sqlite_sequence: createadmin's roles.ensure_groups() adds the
    permissions again with INSERT OR IGNORE, which moves AUTOINCREMENT on, adding nothing."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [line for line in db.iterdump() if '"sqlite_sequence"' not in line]
    finally:
        db.close()  # (a with block would leave it open)


class Service:
    """One unit's ExecStart= run as systemd would, under scripts/supervise.sh."""

    def __init__(self, unit_file: Path, log_dir: Path, run_dir: Path) -> None:
        self.name = unit_file.name.removesuffix(".service").removeprefix("xmailadmin-")
        self.unit = parse_unit(unit_file)
        service = self.unit["Service"]
        account = pwd.getpwnam(one(self.unit, "Service", "User"))
        self.uid, self.gid = account.pw_uid, grp.getgrnam(one(self.unit, "Service", "Group")).gr_gid
        self.env = unit_environment(self.unit, account.pw_dir)
        # RuntimeDirectory=NAME: systemd makes /run/NAME, 0700 and the user's, at start.
        for name in service.get("RuntimeDirectory", []):
            folder = run_dir / name
            folder.mkdir(mode=0o700)
            os.chown(folder, self.uid, self.gid)
            self.env = {k: str(folder) if v == f"/run/{name}" else v for k, v in self.env.items()}
        self.argv = exec_start(self.unit, self.env)
        self.no_new_privs = service.get("NoNewPrivileges", ["no"])[-1] == "yes"
        self.no_caps = service.get("CapabilityBoundingSet", [None])[-1] == ""
        self.log = log_dir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.seen: dict[int, int] = {}  # every descendant ever seen, for the cleanup

    def command(self) -> list[str]:
        setpriv = [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--init-groups",
            *(["--no-new-privs"] if self.no_new_privs else []),
            *(["--bounding-set=-all"] if self.no_caps else []),
        ]  # fmt: skip (no "--": setpriv stops at "env", and supervise.sh splits on "--")
        argv = [*setpriv, "env", "-i", *(f"{k}={v}" for k, v in self.env.items()), *self.argv]
        assert "--" not in argv, f"supervise.sh would split {argv}"
        return argv

    def start(self) -> None:
        umask = int(one(self.unit, "Service", "UMask"), 8)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(SUPERVISE), self.name, *self.command()],
                cwd=one(self.unit, "Service", "WorkingDirectory"),
                env={"PATH": SYSTEM_PATH, "SUPERVISE_LABEL": f"xmailadmin-{self.name}"},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                umask=umask, start_new_session=True,
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def processes(self) -> dict[int, int]:
        assert self.proc is not None
        found = descendants(self.proc.pid)
        self.seen.update(found)
        return found

    def main_pid(self) -> int | None:
        """The unit's main process: supervise.sh's child (the exec'd ExecStart)."""
        assert self.proc is not None
        for pid in self.processes():
            # A script's argv[0] is its interpreter: the program is the first or second word.
            if self.argv[0] in cmdline(pid)[:2] and self._ppid(pid) == self.proc.pid:
                return pid
        return None

    @staticmethod
    def _ppid(pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return -1

    def stop(self) -> None:
        if self.proc is None:
            return
        self.processes()
        if self.proc.poll() is None:
            self.proc.terminate()  # supervise.sh TERMs its child and waits
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            proc_start_time(p) == s for p, s in self.seen.items()
        ):
            time.sleep(0.2)
        for pid, start in self.seen.items():  # KillMode=control-group, by hand
            kill_if_same(pid, start)


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=900, env=env, check=False
    )


def step_ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture
def install_base() -> Iterator[Path]:
    # Under /var/tmp with 0755 on the way down, not pytest's 0700 tmp_path: the service
    # user must reach the install. /var/tmp, not /tmp: setgid must work there.
    base = Path(tempfile.mkdtemp(prefix="xmailadmin-service-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- test 2: why the worker has no NoNewPrivileges ----------------------------------


@needs_root
def test_worker_privileges_keep_setgid_helpers_working(install_base):
    """postdrop is setgid postdrop; with the worker's settings the bit takes effect,
    with the web server's (NoNewPrivileges=yes) it does not."""
    account = ensure_service_user()
    try:
        postdrop = grp.getgrnam("postdrop").gr_gid
    except KeyError:
        pytest.skip("no postdrop group: apt-get install postfix (setup.sh test does)")
    assert not os.statvfs(install_base).f_flag & os.ST_NOSUID, f"{install_base} is nosuid"
    helper = install_base / "egid"
    shutil.copy("/usr/bin/id", helper)
    os.chown(helper, 0, postdrop)
    helper.chmod(0o2755)  # a stand-in for /usr/sbin/postdrop: setgid postdrop
    units = render(install_base / "units")

    def egid(unit_name: str) -> int:
        service = units[unit_name]["Service"]
        nnp = service.get("NoNewPrivileges", ["no"])[-1] == "yes"
        done = subprocess.run(
            ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
             "--init-groups", *(["--no-new-privs"] if nnp else []), "--", str(helper), "-g"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return int(done.stdout)

    assert egid("xmailadmin-worker.service") == postdrop
    assert egid("xmailadmin-web.service") == account.pw_gid


# --- test 3: install, run, kill, restart, uninstall ----------------------------------


@needs_root
def test_install_start_kill_worker_restart_uninstall(install_base):
    ensure_service_user()
    app, unit_dir = install_base / "app", install_base / "units"
    env_file = install_base / "etc" / "env"
    port = free_port()
    queue = f"xmailadmin-service-test-{uuid.uuid4().hex[:8]}"
    script_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VENV"}}
    outbox, sbin = install_base / "spool" / "outbox", install_base / "sbin"
    script_env.update(SYSTEMD_UNIT_DIR=str(unit_dir), REDIS_URL=REDIS_URL, PORT=str(port),
                      XMAILADMIN_OUTBOX=str(outbox), XMAILADMIN_SBIN_DIR=str(sbin),
                      XMAILADMIN_SERVER_NAME=SERVER_NAME)  # fmt: skip
    args = ("--dir", str(app), "--env-file", str(env_file))

    # The one command. Without systemd it says so and exits 0.
    first = step_ok(run_script(*args, env=script_env))
    account = pwd.getpwnam(USER)
    var = app / "var"
    password_file = var / "admin_password"
    assert_first_install(first, app, env_file, port, account)
    assert_the_entry_point_installed(sbin, outbox, app, account, unit_dir)
    assert_a_second_run_changes_nothing(install_base, args, script_env, queue)
    analyze_verify(unit_dir)

    # Start the three units' commands as systemd would, each under supervise.sh.
    run_dir = install_base / "run"
    run_dir.mkdir(mode=0o755)
    services = {
        s.name: s
        for s in (Service(unit_dir / name, install_base, run_dir) for name in SERVICES)
    }  # fmt: skip
    web, worker = services["web"], services["worker"]
    assert web.argv[web.argv.index("--bind") + 1] == f"127.0.0.1:{port}"
    assert worker.env["XMAILADMIN_CELERY_QUEUE"] == queue
    assert worker.env["XMAILADMIN_SERVER_NAME"] == SERVER_NAME  # the server it registers

    def logs() -> str:
        return "\n".join(f"--- {s.name}\n{s.text()[-4000:]}" for s in services.values())

    try:
        start_and_wait_until_ready(services, port, run_dir, var, logs)
        assert_nobody_runs_as_root(services, account)
        assert_a_killed_worker_comes_back(web, worker, port, account, logs)
        print(logs())  # shown with -s, or next to a failure below
    finally:
        for service in services.values():
            service.stop()
        forget_queue(queue)

    # Uninstall keeps the data; --purge deletes it (and the copy, never the checkout).
    out = step_ok(run_script("--uninstall", *args, env=script_env))
    assert not any((unit_dir / name).exists() for name in UNITS), out
    assert password_file.exists() and env_file.exists()
    out = step_ok(run_script("--uninstall", "--purge", *args, env=script_env))
    assert not app.exists() and not env_file.exists(), out
    assert (REPO / "scripts" / "install-service.sh").exists()


WORKER_READY = re.compile(r"celery@\S+ ready\.")
SERVER_NAME = "mail-2.example"  # a worker-only machine's name, written by the installer


def assert_first_install(first: str, app: Path, env_file: Path, port: int, account) -> None:
    """What the first run printed, and the owners and modes of what it wrote."""
    assert account.pw_uid != 0
    var = app / "var"
    password_file = var / "admin_password"
    password = password_file.read_text().strip()
    assert password and password not in first, "the admin password was printed"
    assert REDIS_URL not in first, "a settings value was printed"
    assert str(password_file) in first and "not started" in first
    for path, mode, owner in (
        (var, 0o700, USER), (password_file, 0o600, USER), (env_file, 0o640, "root"),
    ):  # fmt: skip
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == mode, path
        assert pwd.getpwuid(st.st_uid).pw_name == owner, path
    assert grp.getgrgid(env_file.stat().st_gid).gr_name == grp.getgrgid(account.pw_gid).gr_name
    assert parse_env_file(env_file) == {
        "REDIS_URL": REDIS_URL, "PORT": str(port),
        "XMAILADMIN_OUTBOX": str(env_file.parent.parent / "spool" / "outbox"),
        "XMAILADMIN_SERVER_NAME": SERVER_NAME,
    }  # fmt: skip
    unit_dir = env_file.parent.parent / "units"
    assert all((unit_dir / name).is_file() for name in UNITS)
    assert not any(p.owner() == USER for p in app.glob("xmailadmin/**/*.py")), "code not root's"


def assert_the_entry_point_installed(sbin: Path, outbox: Path, app: Path, account,
                                     unit_dir: Path) -> None:  # fmt: skip
    """xmail-sendmail linked for the applications; the outbox the service's user owns
    and the worker and web units may write (ProtectSystem=strict)."""
    assert (sbin / "xmail-sendmail").resolve() == app / "bin" / "xmail-sendmail"
    for name in ("", "new", "cur", "status"):
        assert (outbox / name).owner() == USER, name
    assert (outbox / "new").stat().st_gid == account.pw_gid  # the group that reads drops
    for unit in ("xmailadmin-worker.service", "xmailadmin-web.service"):
        assert f"ReadWritePaths={app}/var -{outbox}\n" in (unit_dir / unit).read_text()


def assert_a_second_run_changes_nothing(
    install_base: Path, args: tuple[str, ...], script_env: dict[str, str], queue: str
) -> None:
    """What an administrator adds to the settings stays; a second run changes nothing."""
    env_file = Path(args[args.index("--env-file") + 1])
    var = Path(args[args.index("--dir") + 1]) / "var"
    with env_file.open("a") as fh:
        fh.write(f"XMAILADMIN_CELERY_QUEUE={queue}\nXMAILADMIN_PROBE_INTERVAL=0\n"
                 "XMAILADMIN_WORKER_CONCURRENCY=2\nWEB_WORKERS=1\n")  # fmt: skip
    db = var / "db.sqlite3"
    before, dump = tree_snapshot(install_base, skip={db, var}), db_dump(db)
    second = step_ok(run_script(*args, env=script_env))
    after = tree_snapshot(install_base, skip={db, var})
    assert after == before, f"second run changed files\n{second}"
    assert db_dump(db) == dump, "second run changed the database"
    for said in ("copied", "wrote", "units written", "created the system user"):
        assert said not in second, second


def start_and_wait_until_ready(
    services: dict[str, Service], port: int, run_dir: Path, var: Path, logs
) -> None:
    worker, beat = services["worker"], services["beat"]
    for service in services.values():
        service.start()
    wait_for(lambda: http_status(port) == 200, "the web server", 90, logs)
    # Its control socket in its RuntimeDirectory=, not in the (read-only) home.
    wait_for(lambda: (run_dir / "xmailadmin-web" / "gunicorn.ctl").exists(),
             "gunicorn's control socket", 30, logs)  # fmt: skip
    wait_for(lambda: WORKER_READY.search(worker.text()), "the worker's ready", 90, logs)
    wait_for(lambda: "beat: Starting..." in beat.text(), "beat", 60, logs)
    wait_for(lambda: list(var.glob("celerybeat-schedule*")), "the schedule file", 30, logs)


def assert_nobody_runs_as_root(services: dict[str, Service], account) -> None:
    """Every process of every unit is the service user's, without capabilities."""
    for service in services.values():
        procs = service.processes()
        assert procs, f"{service.name}: no process"
        for pid in procs:
            assert_runs_as_the_service_user(service, pid, account)
    assert "superuser privileges" not in services["worker"].text(), "the worker warns about root"


def assert_runs_as_the_service_user(service: Service, pid: int, account) -> None:
    try:
        fields = status_of(pid)
    except OSError:
        return  # ended meanwhile
    uids, gids = fields["Uid"].split(), fields["Gid"].split()
    assert set(uids) == {str(account.pw_uid)}, (service.name, pid, fields["Uid"])
    assert set(gids) == {str(service.gid)}, (service.name, pid, fields["Gid"])
    assert int(fields["CapEff"], 16) == 0, (service.name, pid)
    assert fields["NoNewPrivs"] == ("1" if service.no_new_privs else "0")


def assert_a_killed_worker_comes_back(
    web: Service, worker: Service, port: int, account, logs
) -> None:
    """SIGKILL the worker: it comes back, and the web server answers all along."""
    web_main, old = web.main_pid(), worker.main_pid()
    assert web_main and old
    kill_worker_as_systemd_would(worker, old)
    answers = answers_until_the_worker_is_ready_again(worker, port, logs)
    assert "worker ended (exit 137)" in worker.text(), logs()
    # The first answer is taken before the worker is back; how many more depends on how
    # fast it restarts, so only their being 200 is asserted.
    assert answers and all(a == 200 for a in answers), answers
    new = worker.main_pid()
    assert new and new != old and status_of(new)["Uid"].split()[0] == str(account.pw_uid)
    assert web.main_pid() == web_main, "the web server was restarted"
    assert http_status(port) == 200


def kill_worker_as_systemd_would(worker: Service, main: int) -> None:
    group = worker.processes()  # pool processes, guardian: the unit's control group
    kill_if_same(main, group.pop(main))
    # KillMode=mixed: when the main process is gone, systemd stops what is left of the
    # unit before the restart (emulated here with SIGTERM, then SIGKILL).
    time.sleep(0.5)
    left = [pid for pid, start in group.items() if kill_if_same(pid, start, signal.SIGTERM)]
    time.sleep(1)
    for pid in left:
        kill_if_same(pid, group[pid])
    print(f"after the worker's SIGKILL, {len(left)} of its {len(group)} processes were left")


def answers_until_the_worker_is_ready_again(worker: Service, port: int, logs) -> list:
    """The web server's HTTP status, every 0.2 s, until the worker is ready a second time."""
    answers: list[int | None] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        answers.append(http_status(port))
        if len(WORKER_READY.findall(worker.text())) >= 2:
            return answers
        time.sleep(0.2)
    pytest.fail(f"the worker did not come back\n{logs()}")


def forget_queue(queue: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"*{queue}*"):
            client.delete(key)
    except Exception as error:  # cleanup only
        print(f"redis cleanup: {error}")


def test_a_worker_only_machine_gets_the_worker_and_a_target_of_it_alone(tmp_path):
    """--worker-only (a mail server serving a panel elsewhere): the worker's unit, and a
    target that starts it at boot and nothing else."""
    out = tmp_path / "units"
    done = subprocess.run(
        [str(SCRIPT), "--render-only", str(out), "--worker-only"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["xmailadmin-worker.service",
                                                     "xmailadmin.target"]  # fmt: skip
    target = parse_unit(out / "xmailadmin.target")
    assert target["Unit"]["Wants"] == ["xmailadmin-worker.service"]
    assert target["Install"]["WantedBy"] == ["multi-user.target"]
    full = render(tmp_path / "full")  # without the option: all three, as before
    assert one(full["xmailadmin.target"], "Unit", "Wants").split() == list(SERVICES)
