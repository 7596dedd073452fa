"""Exim (Debian's exim4) as the relay to the SMTP account: read, compare, render, apply, test.

Debian builds exim's configuration from ``update-exim4.conf.conf`` (the ``dc_*``
answers), the templates and a macro file, by running ``update-exim4.conf``. So
the account goes where Debian expects it: ``dc_smarthost``, the client password
line in ``passwd.client``, and the smarthost transport's macros
(``REMOTE_SMTP_SMARTHOST_*``) for required TLS, certificate checks and, for port
465, ``protocol = smtps``. The effective values are read back with ``exim -bP``.

A private copy of exim (see ``scripts/private-exim.sh`` and ``docs/relays.md``)
is driven through the same code: its binary, configuration directory, generated
file (``-C``) and ``update-exim4.conf`` are parameters.
"""

from __future__ import annotations

import os
import re
import shlex
import signal

from ..base import Target, TargetError
from ..detection import detect_binary
from ..run import RunOutput, run, which
from ..texts import Text, gettext_noop
from ..versions import parse_exim_version
from .config import Comparison, refusal, rejection, shown, write_failed
from .exim_log import EximFollower
from .files import backup_stamp, read_text, take_backup, write_merged
from .follow import Queue
from .model import (
    SYSTEM_CA_FILE,
    ApplyResult,
    ConfigFile,
    Difference,
    GeneratedConfig,
    RelayAccount,
    RelayBase,
    RelayStatus,
    secret_digest,
)
from .procs import process_alive, read_pid

DEFAULT_CONF_DIR = "/etc/exim4"
DEFAULT_LOG_PATH = "/var/log/exim4/mainlog"
EXIM_GROUP = "Debian-exim"  # compiled in; passwd.client must be readable by it
TRANSPORT = "remote_smtp_smarthost"
COMMAND_TIMEOUT = 30.0
MACRO_PREFIX = "REMOTE_SMTP_SMARTHOST_"
# Given with -D to a test send's delivery, and passed on by exim to the process that
# makes a bounce: our macros file then has that bounce only queued, not sent, so it is
# removed with the failed test message instead of reaching the sender's mailbox.
TEST_SEND_MACRO = "XMAILADMIN_TEST_SEND"
BOUNCE_HOOK = f".ifdef {TEST_SEND_MACRO}\nqueue_only = true\n.endif\n"
# Debian's smarthost transport only *tries* to log in, then delivers without: these
# lines, in a file that sorts right after the transport's own (update-exim4.conf joins
# the conf.d files in C order), make the login required.
REQUIRE_AUTH_FILE = "30_exim4-config_remote_smtp_smarthost_require_auth"
REQUIRE_AUTH = (
    f"# continues {TRANSPORT} (the file before this one): a relay configured with a\n"
    "# password must log in with it, never deliver without\n"
    "  hosts_require_auth = *\n"
)
TRANSPORT_OPTIONS = (
    "protocol",
    "port",
    "hosts_require_auth",
    "hosts_require_tls",
    "tls_verify_certificates",
    "tls_verify_hosts",
    "tls_verify_cert_hostnames",
)


def smarthost_for(account: RelayAccount) -> str:
    # Debian's notation: host::port (a single colon would start a second host).
    return f"{account.host}::{account.port}"


def _smarthost_hosts(value: str) -> list[str]:
    """The hosts of a dc_smarthost list ("a.example::587 : b.example"), without ports."""
    hosts = [h.strip() for h in re.split(r"(?<!:):(?!:)", value)]
    return [h.split("::")[0].strip() for h in hosts if h]


def parse_shell_assignments(text: str) -> dict[str, str]:
    """``NAME='value'`` lines of a file that the shell sources, without running a shell."""
    values = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z_]\w*)=(.*)$", line)
        if not match:
            continue
        try:
            words = shlex.split(match.group(2), comments=True)
        except ValueError:
            continue
        values[match.group(1)] = " ".join(words)
    return values


def _parse_options(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip().removeprefix("no_")] = value.strip()
        elif line.strip():
            # Booleans print as "name" or "no_name".
            word = line.strip()
            values[word.removeprefix("no_")] = "false" if word.startswith("no_") else "true"
    return values


class EximRelay(RelayBase):
    mta = "exim"

    def __init__(
        self,
        binary: str | None = None,
        conf_dir: str | None = None,
        config_file: str | None = None,
        update_exim4_conf: str | None = None,
    ) -> None:
        """``config_file``: exim runs with ``-C`` it and ``update-exim4.conf`` writes it
        (a private copy); None: the system's own configuration."""
        self.binary = binary or which("exim4") or which("exim") or "/usr/sbin/exim4"
        self.conf_dir = os.path.abspath(conf_dir or DEFAULT_CONF_DIR)
        self.config_file = config_file
        self.update_exim4_conf = (
            update_exim4_conf or which("update-exim4.conf") or "/usr/sbin/update-exim4.conf"
        )

    # -- files and commands --

    @property
    def settings_file(self) -> str:
        return os.path.join(self.conf_dir, "update-exim4.conf.conf")

    @property
    def passwd_client(self) -> str:
        return os.path.join(self.conf_dir, "passwd.client")

    def macros_file(self, dc: dict[str, str]) -> str:
        # Both places are Debian's documented spots for local macros.
        if _split(dc):
            return os.path.join(self.conf_dir, "conf.d", "main", "000_localmacros")
        return os.path.join(self.conf_dir, "exim4.conf.localmacros")

    @property
    def require_auth_file(self) -> str:
        return os.path.join(self.conf_dir, "conf.d", "transport", REQUIRE_AUTH_FILE)

    def exim(self) -> list[str]:
        return [self.binary, *(["-C", self.config_file] if self.config_file else [])]

    def _run_exim(self, *args: str) -> RunOutput:
        return run([*self.exim(), *args], timeout=COMMAND_TIMEOUT)

    def update_argv(self) -> list[str]:
        argv = [self.update_exim4_conf]
        if self.conf_dir != DEFAULT_CONF_DIR:
            argv += ["-d", self.conf_dir]
        if self.config_file:
            argv += ["-o", self.config_file]
        return argv

    def dc_settings(self) -> dict[str, str]:
        return parse_shell_assignments(read_text(self.settings_file))

    def macro(self, name: str) -> str | None:
        out = self._run_exim("-bP", "macro", name)
        _, sep, value = out.stdout.strip().partition("=")
        return value.strip() if out.returncode == 0 and sep else None

    def options(self, *names: str) -> dict[str, str]:
        return _parse_options(self._run_exim("-bP", *names).stdout)

    def transport_options(self) -> dict[str, str]:
        found = _parse_options(self._run_exim("-bP", "transport", TRANSPORT).stdout)
        return {name: found.get(name, "") for name in TRANSPORT_OPTIONS}

    def log_path(self, log_file_path: str) -> str | None:
        # "syslog : /var/log/exim4/%slog" -> the file entry; empty -> Debian's build default
        files = [p.strip() for p in log_file_path.split(":") if "/" in p]
        if not log_file_path.strip():
            return DEFAULT_LOG_PATH
        return files[0].replace("%s", "main") if files else None

    def daemon_pid(self) -> int | None:
        path = self.options("pid_file_path").get("pid_file_path") or "/run/exim4/exim.pid"
        pid = read_pid(path)
        name = os.path.basename(self.binary)
        return pid if pid and process_alive(pid, name) else None

    def ready(self) -> tuple[bool, Text]:
        """Exim delivers at once without a daemon; it needs a valid configuration."""
        if not os.access(self.binary, os.X_OK):
            return False, Text(gettext_noop("exim is not installed"))
        out = self._run_exim("-bV")
        if out.returncode != 0:
            said = out.text.splitlines()[-1] if out.text else out.error
            return False, Text(gettext_noop("exim cannot run: %(output)s"), {"output": said})
        return True, Text(gettext_noop("exim's configuration is valid"))

    # -- status --

    def status(self) -> RelayStatus:
        status = RelayStatus(mta=self.mta, installed=False, config_path=self.settings_file)
        if not os.access(self.binary, os.X_OK):
            status.notes.append(Text(gettext_noop("exim is not installed")))
            return status
        status.installed = True
        det = detect_binary("exim", (self.binary,), (("-bV",),), parse_exim_version)
        status.version = det.version
        status.take_tls(det)
        dc = self.dc_settings()
        status.configured = bool(dc)
        if not os.path.isfile(self.settings_file):
            status.notes.append(
                Text(
                    gettext_noop("no %(path)s: exim is not configured the Debian way"),
                    {"path": self.settings_file},
                )
            )
        check = self._run_exim("-bV")
        if check.returncode != 0:
            status.notes.append(
                Text(
                    gettext_noop("exim rejects its configuration: %(output)s"),
                    {"output": check.text[-300:]},
                )
            )
        settings = {
            name: dc.get(name, "")
            for name in ("dc_eximconfig_configtype", "dc_smarthost", "dc_use_split_config")
        }
        settings["DCsmarthost"] = self.macro("DCsmarthost") or ""
        settings["DC_eximconfig_configtype"] = self.macro("DC_eximconfig_configtype") or ""
        settings.update(self.transport_options())
        general = self.options("log_file_path", "spool_directory")
        settings.update(general)
        settings["passwd.client"] = self.passwd_client if os.path.exists(self.passwd_client) else ""
        self._password_entry(status, settings)
        status.settings = settings
        status.log_path = self.log_path(general.get("log_file_path", ""))
        status.running = self.daemon_pid() is not None
        if not status.running:
            status.notes.append(
                Text(
                    gettext_noop(
                        "no exim daemon is running: messages are sent at once, but nothing "
                        "retries deferred ones"
                    )
                )
            )
        return status

    def _password_entry(self, status: RelayStatus, settings: dict[str, str]) -> None:
        host = settings["DCsmarthost"].split("::")[0] or settings["dc_smarthost"].split("::")[0]
        try:
            text = read_text(self.passwd_client)
        except OSError:
            status.notes.append(
                Text(
                    gettext_noop("%(path)s could not be read (needs root)"),
                    {"path": self.passwd_client},
                )
            )
            return
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if host and key.strip().lower() == host.lower() and not key.startswith("#"):
                user, _, password = rest.partition(":")
                settings["relay_auth_user"] = user
                status.password_digest = secret_digest(password)
                return

    # -- compare --

    def compare(self, status: RelayStatus, account: RelayAccount) -> list[Difference]:
        return EximComparison(status, account, self.render(account)).differences()

    # -- render --

    def render(self, account: RelayAccount) -> GeneratedConfig:
        if ":" in account.host:
            raise TargetError(
                Text(
                    gettext_noop(
                        "exim's smarthost list cannot take an IPv6 address here: use a name"
                    )
                )
            )
        notes = []
        if account.tls_name and account.tls_name != account.host:
            notes.append(
                Text(
                    gettext_noop(
                        "exim checks the certificate against the smarthost as written "
                        "(%(host)s); to check it against %(name)s, use that name as the host"
                    ),
                    {"host": account.host, "name": account.tls_name},
                )
            )
        macros = {
            "HOSTS_REQUIRE_TLS": "*",
            "TLS_VERIFY_CERTIFICATES": account.ca_file or SYSTEM_CA_FILE,
            "TLS_VERIFY_HOSTS": "*",
        }
        if account.implicit_tls:
            # "protocol" cannot be expanded per host, so it is the transport's for all.
            macros["PROTOCOL"] = "smtps"
        macro_text = "".join(f"{MACRO_PREFIX}{k} = {v}\n" for k, v in macros.items())
        settings = {
            "dc_eximconfig_configtype": "smarthost",
            "dc_smarthost": smarthost_for(account),
        }
        dc = self.dc_settings()
        files = [
            ConfigFile(
                self.passwd_client,
                f"{account.host}:{account.user}:{account.password}\n",
                0o640,
                secret=True,
                group=EXIM_GROUP,
                merge="colon-lines",
            ),
            ConfigFile(self.macros_file(dc), macro_text + BOUNCE_HOOK, 0o644, merge="block"),
        ]
        if _split(dc):
            files.append(ConfigFile(self.require_auth_file, REQUIRE_AUTH, 0o644, merge="block"))
        else:
            notes.append(NO_REQUIRED_LOGIN)
        commands = [" ".join(self.update_argv()), " ".join([*self.exim(), "-bV"])]
        commands.append("invoke-rc.d exim4 reload   # if the exim daemon runs")
        return GeneratedConfig(self.mta, self.settings_file, settings, files, commands, notes)

    # -- apply --

    def apply_config(
        self, config: GeneratedConfig, *, confirm: bool = False, ca_file: str | None = None
    ) -> ApplyResult:
        """Write ``config`` with a backup, rebuild and check exim's configuration, reload;
        roll everything back if exim rejects it."""
        if refused := refusal(confirm, self.conf_dir, ca_file):
            return refused
        settings = ConfigFile(
            self.settings_file,
            "".join(f"{k}='{v}'\n" for k, v in config.settings.items()),
            merge="assignments",
        )
        written = [settings.path, *(f.path for f in config.files)]
        # The generated file is saved too: restoring it undoes the rebuild at once.
        generated = self.config_file or "/var/lib/exim4/config.autogenerated"
        secret = [f.path for f in config.files if f.secret]
        backup = take_backup([*written, generated], backup_stamp(), secret)
        # The password lines of the smarthost(s) configured so far: a switch of account
        # replaces them (other hosts' lines stay).
        old_hosts = _smarthost_hosts(self.dc_settings().get("dc_smarthost", ""))
        try:
            for f in (settings, *config.files):
                write_merged(f, old_hosts if f.secret else ())
        except OSError as exc:
            return write_failed(backup, exc)
        steps = [(os.path.basename(a[0]), a) for a in (self.update_argv(), [*self.exim(), "-bV"])]
        if rejected := rejection(backup, written, steps, COMMAND_TIMEOUT):
            return rejected
        backup.finish()  # no rollback will need the old passwd.client: its copies go
        pid = self.daemon_pid()
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # exim's daemon re-executes itself with the new file
        return ApplyResult(
            ok=True,
            reason=Text(
                gettext_noop("configuration written and checked (exim -bV); daemon reloaded")
                if pid
                else gettext_noop("configuration written and checked (exim -bV); no daemon running")
            ),
            written=written,
            backups=backup.copies,
            action="reloaded" if pid else "not running",
        )

    # -- test send --

    def queue(self) -> Queue:
        # -odq: only queue. The follower then delivers with "exim -M ID" in the foreground
        # within the time limit: exim's own background delivery runs in a session of its
        # own that no time limit of ours reaches, and may be cut off as it starts.
        return Queue(self.mta, [*self.exim(), "-odq"], self.handover_env(), self._follower)

    def _follower(self, target: Target) -> EximFollower:
        path = self.log_path(self.options("log_file_path").get("log_file_path", ""))
        return EximFollower(path, self.exim(), [f"-D{TEST_SEND_MACRO}"])

    def sendmail_path(self) -> str:
        return self.binary

    def plain_sendmail(self) -> str | None:
        """The sendmail any program can call to reach this exim; None when exim needs
        ``-C`` (a private copy), which a program calling "sendmail" cannot pass."""
        return None if self.config_file else self.binary

    def handover_env(self) -> dict[str, str]:
        return {}


NO_REQUIRED_LOGIN = Text(
    gettext_noop(
        "with dc_use_split_config='false', Debian's template has no place for "
        "hosts_require_auth: exim delivers without logging in when the login fails; add "
        "'hosts_require_auth = *' to the remote_smtp_smarthost transport in "
        "exim4.conf.template"
    )
)


def _split(dc: dict[str, str]) -> bool:
    return dc.get("dc_use_split_config", "").lower() == "true"


class EximComparison(Comparison):
    """The differences between exim's effective configuration and what the account needs."""

    mta = "exim"

    def __init__(self, status: RelayStatus, account: RelayAccount, wanted: GeneratedConfig):
        super().__init__(status, account, wanted)
        self.smarthost = smarthost_for(account)
        self.ca_file = account.ca_file or SYSTEM_CA_FILE

    def _check(self) -> None:
        self._configtype()
        self._smarthost()
        self._protocol()
        self._tls()
        self._login_required()
        self._password()

    def _configtype(self) -> None:
        have = self.have.get("dc_eximconfig_configtype", "")
        if have in ("smarthost", "satellite"):
            return
        self._add(
            "dc_eximconfig_configtype",
            have,
            "smarthost",
            gettext_noop(
                "exim is configured as '%(have)s', so it does not send through the account's "
                "server: set dc_eximconfig_configtype='smarthost'"
            ),
            have=shown(have),
        )

    def _smarthost(self) -> None:
        have, live = self.have.get("dc_smarthost", ""), self.have.get("DCsmarthost", "")
        if have != self.smarthost:
            if have.split("::")[0] == self.account.host:
                msgid = gettext_noop(
                    "dc_smarthost is %(have)s, account says port %(port)s: "
                    "set dc_smarthost='%(smarthost)s'"
                )
            else:
                msgid = gettext_noop(
                    "dc_smarthost is %(have)s, account says %(smarthost)s: "
                    "set dc_smarthost='%(smarthost)s'"
                )
            self._add(
                "dc_smarthost",
                have,
                self.smarthost,
                msgid,
                have=shown(have),
                port=self.account.port,
                smarthost=self.smarthost,
            )
        elif live != have:
            self._add(
                "DCsmarthost",
                live,
                have,
                gettext_noop(
                    "update-exim4.conf.conf says %(have)s, but the configuration exim uses "
                    "still says %(live)s: run update-exim4.conf"
                ),
                have=have,
                live=shown(live),
            )

    def _protocol(self) -> None:
        have = self.have.get("protocol", "") or "smtp"
        want = "smtps" if self.account.implicit_tls else "smtp"
        if have == want:
            return
        if want == "smtps":
            msgid = gettext_noop(
                "the smarthost transport uses protocol %(have)s, account says port %(port)s "
                "with implicit TLS: set %(macro)s = smtps"
            )
        else:
            msgid = gettext_noop(
                "the smarthost transport uses implicit TLS (smtps), but port %(port)s uses "
                "STARTTLS: remove %(macro)s"
            )
        macro = f"{MACRO_PREFIX}PROTOCOL"
        self._add("protocol", have, want, msgid, have=have, port=self.account.port, macro=macro)

    def _tls(self) -> None:
        if self.have.get("hosts_require_tls") != "*":
            self._add(
                "hosts_require_tls",
                self.have.get("hosts_require_tls", ""),
                "*",
                gettext_noop(
                    "TLS is not required: the password could travel unencrypted; set %(macro)s = *"
                ),
                macro=f"{MACRO_PREFIX}HOSTS_REQUIRE_TLS",
            )
        if self.have.get("tls_verify_hosts") != "*":
            self._add(
                "tls_verify_hosts",
                self.have.get("tls_verify_hosts", ""),
                "*",
                gettext_noop("the server certificate is not required to verify: set %(macro)s = *"),
                macro=f"{MACRO_PREFIX}TLS_VERIFY_HOSTS",
            )
        have = self.have.get("tls_verify_certificates", "")
        if have != self.ca_file and (self.account.ca_file or have not in ("system", "")):
            self._add(
                "tls_verify_certificates",
                have,
                self.ca_file,
                gettext_noop(
                    "exim trusts %(have)s, the account's certificate needs %(ca_file)s: "
                    "set %(macro)s = %(ca_file)s"
                ),
                have=shown(have),
                ca_file=self.ca_file,
                macro=f"{MACRO_PREFIX}TLS_VERIFY_CERTIFICATES",
            )

    def _login_required(self) -> None:
        if self.have.get("hosts_require_auth") == "*":
            return
        self._add(
            "hosts_require_auth",
            self.have.get("hosts_require_auth", ""),
            "*",
            gettext_noop(
                "the login is not required: when it fails, exim delivers without it to a "
                "server that allows that; set hosts_require_auth = * in the %(transport)s "
                "transport"
            ),
            transport=TRANSPORT,
        )

    def _password(self) -> None:
        user = self.have.get("relay_auth_user")
        host = self.account.host
        if user is None:
            self._add(
                "passwd.client",
                "",
                f"{host}:{self.account.user}:…",
                gettext_noop("passwd.client has no line for %(host)s: exim will not log in"),
                host=host,
            )
        else:
            self._login(
                user,
                ("relay_auth_user", "relay_auth_password"),
                Text(gettext_noop("passwd.client for %(host)s"), {"host": host}),
            )
