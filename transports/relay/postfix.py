"""Postfix as the relay to the SMTP account: read, compare, render, apply, test.

Every postfix command gets ``-c CONFIG_DIR`` (sendmail gets ``MAIL_CONFIG``), so a
private instance with its own configuration directory, queue and log is driven
exactly like the system's ``/etc/postfix``. The password only ever goes into the
0600 SASL map; the maps are ``texthash:`` so no ``postmap`` run is needed and no
stale ``.db`` can disagree with the text.
"""

from __future__ import annotations

import os

from ..base import Target
from ..cert_probe import offers_login
from ..detection import linked_tls
from ..run import RunOutput, run, which
from ..texts import Text, gettext_noop
from ..versions import parse_assignments
from .config import NOT_SET, Comparison, refusal, rejection, rolled_back, shown, write_failed
from .files import Backup, backup_stamp, take_backup, write_file, write_merged
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
from .postfix_log import PostfixFollower
from .procs import children_of, process_alive, read_pid, wait_gone

DEFAULT_CONFIG_DIR = "/etc/postfix"
SYSLOG_FILES = ("/var/log/mail.log", "/var/log/maillog", "/var/log/syslog")
COMMAND_TIMEOUT = 30.0
SETTLE_TIMEOUT = 10.0

# The settings that decide how mail leaves through the relay, in display order.
SETTINGS = (
    "relayhost",
    "smtp_tls_wrappermode",
    "smtp_tls_security_level",
    "smtp_tls_policy_maps",
    "smtp_tls_CAfile",
    "smtp_tls_CApath",
    "smtp_tls_loglevel",
    "smtp_sasl_auth_enable",
    "smtp_sasl_password_maps",
    "smtp_sasl_security_options",
    "smtp_sasl_tls_security_options",
    "myorigin",
    "sender_canonical_maps",
    "smtp_generic_maps",
    "masquerade_domains",
    "maillog_file",
    "queue_directory",
    "sendmail_path",
)


def relayhost_for(account: RelayAccount) -> str:
    # Brackets: no MX lookup, the host itself. The same string keys both maps.
    return f"[{account.host}]:{account.port}"


# Compiled forms of a lookup table next to its text, by postmap's type.
_COMPILED = {".db": "hash", ".lmdb": "lmdb", ".cdb": "cdb"}


def _compiled_forms(path: str) -> list[tuple[str, str]]:
    """(file, type) of each compiled form of the table ``path`` that exists."""
    return [(path + end, kind) for end, kind in _COMPILED.items() if os.path.exists(path + end)]


def _map_files(value: str) -> list[str]:
    """``texthash:/a, hash:/b`` -> the lookup tables, as postmap takes them."""
    return [m for m in value.replace(",", " ").split() if ":" in m]


class PostfixRelay(RelayBase):
    mta = "postfix"

    def __init__(self, config_dir: str | None = None) -> None:
        self.config_dir = os.path.abspath(config_dir or DEFAULT_CONFIG_DIR)

    # -- commands --

    @property
    def main_cf(self) -> str:
        return os.path.join(self.config_dir, "main.cf")

    @property
    def sasl_map(self) -> str:
        return os.path.join(self.config_dir, "sasl_passwd")

    @property
    def policy_map(self) -> str:
        return os.path.join(self.config_dir, "tls_policy")

    def _command(self, name: str, *args: str) -> list[str]:
        return [which(name) or f"/usr/sbin/{name}", "-c", self.config_dir, *args]

    def _run(self, name: str, *args: str) -> RunOutput:
        return run(self._command(name, *args), timeout=COMMAND_TIMEOUT)

    def postconf(self, *names: str) -> dict[str, str]:
        return parse_assignments(self._run("postconf", *names).stdout)

    def _lookup(self, key: str, table: str) -> str | None:
        out = self._run("postmap", "-q", key, table)
        return out.stdout.strip() if out.returncode == 0 else None

    # -- state --

    def master_pid(self, queue_directory: str | None = None) -> int | None:
        queue = queue_directory or self.postconf("queue_directory").get("queue_directory", "")
        pid = read_pid(os.path.join(queue, "pid", "master.pid")) if queue else None
        return pid if pid and process_alive(pid, "master") else None

    def ready(self) -> tuple[bool, Text]:
        """Whether a message handed to this postfix can be followed to delivery, and why."""
        if not which("postconf"):
            return False, Text(gettext_noop("postfix is not installed"))
        if not os.path.isfile(self.main_cf):
            return False, Text(
                gettext_noop("postfix has no %(path)s: it is not configured"),
                {"path": self.main_cf},
            )
        if self.master_pid() is None:
            return False, Text(gettext_noop("postfix is not running (postfix start)"))
        return True, Text(gettext_noop("postfix is running"))

    def log_path(self, settings: dict[str, str]) -> str | None:
        if settings.get("maillog_file"):
            return settings["maillog_file"]
        return next((f for f in SYSLOG_FILES if os.path.isfile(f)), None)

    def status(self) -> RelayStatus:
        status = RelayStatus(mta=self.mta, installed=False, config_path=self.main_cf)
        if not which("postconf"):
            status.notes.append(Text(gettext_noop("postfix is not installed (no postconf)")))
            return status
        status.installed = True
        defaults = parse_assignments(
            run(
                [which("postconf") or "postconf", "-d", "mail_version", "daemon_directory"],
                timeout=COMMAND_TIMEOUT,
            ).stdout
        )
        status.version = defaults.get("mail_version")
        # The TLS is in the smtp daemon (through libpostfix-tls), not in sendmail.
        daemons = defaults.get("daemon_directory") or "/usr/lib/postfix/sbin"
        status.take_tls(linked_tls("postfix", os.path.join(daemons, "smtp")))
        status.configured = os.path.isfile(self.main_cf)
        if not status.configured:
            # Every postfix command dies after a pause without main.cf: ask nothing more.
            status.running = False
            status.notes.append(
                Text(
                    gettext_noop("no %(path)s: postfix is installed but not configured"),
                    {"path": self.main_cf},
                )
            )
            return status
        settings = self.postconf(*SETTINGS)
        status.settings = {name: settings.get(name, "") for name in SETTINGS}
        status.running = self.master_pid(settings.get("queue_directory")) is not None
        status.log_path = self.log_path(settings)
        if status.log_path and not os.access(status.log_path, os.R_OK):
            status.notes.append(
                Text(
                    gettext_noop("the mail log %(path)s is not readable"), {"path": status.log_path}
                )
            )
        self._relay_entries(status)
        return status

    def _relay_entries(self, status: RelayStatus) -> None:
        """The map entries for the relayhost: TLS policy, SASL user, password digest."""
        key = status.settings.get("relayhost", "")
        if not key:
            return
        for table in _map_files(status.settings.get("smtp_tls_policy_maps", "")):
            if (policy := self._lookup(key, table)) is not None:
                status.settings["relay_tls_policy"] = policy
                break
        for table in _map_files(status.settings.get("smtp_sasl_password_maps", "")):
            if (entry := self._lookup(key, table)) is not None:
                user, _, password = entry.partition(":")
                status.settings["relay_sasl_user"] = user
                status.password_digest = secret_digest(password)
                break
        else:
            if status.settings.get("smtp_sasl_password_maps") and os.geteuid() != 0:
                status.notes.append(
                    Text(gettext_noop("the SASL password map could not be read (needs root)"))
                )

    # -- compare --

    def compare(self, status: RelayStatus, account: RelayAccount) -> list[Difference]:
        return PostfixComparison(status, account, self.render(account)).differences()

    # -- render --

    def render(self, account: RelayAccount) -> GeneratedConfig:
        key = relayhost_for(account)
        name = account.certificate_name
        notes = []
        if name:
            # "secure" checks the chain and the name; match= names the certificate, which
            # a bracketed IP relayhost cannot.
            policy = f"{key} secure match={name}"
        else:
            policy = f"{key} encrypt"
            notes.append(
                Text(
                    gettext_noop(
                        "the relay is given as the address %(host)s: postfix cannot check the "
                        "certificate's name against an address; give the name on the "
                        "certificate (tls_name) to get a verified connection"
                    ),
                    {"host": account.host},
                )
            )
        if account.mode_mismatch:
            notes.append(
                Text(
                    gettext_noop(
                        "port %(port)s with %(mode)s: the usual rule is 465 = implicit TLS, "
                        "others STARTTLS"
                    ),
                    {"port": account.port, "mode": account.mode.value},
                )
            )
        settings = {
            "relayhost": key,
            "smtp_tls_wrappermode": "yes" if account.implicit_tls else "no",
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_policy_maps": f"texthash:{self.policy_map}",
            "smtp_tls_CAfile": account.ca_file or SYSTEM_CA_FILE,
            # Level 1 logs "Verified TLS connection established ... TLSv1.3": the proof.
            "smtp_tls_loglevel": "1",
            "smtp_sasl_auth_enable": "yes",
            "smtp_sasl_password_maps": f"texthash:{self.sasl_map}",
            # The default "noplaintext" forbids PLAIN and LOGIN, which is all most offer;
            # the connection is encrypted before the password goes.
            "smtp_sasl_security_options": "noanonymous",
            "smtp_sasl_tls_security_options": "noanonymous",
        }
        files = [
            ConfigFile(
                self.sasl_map, f"{key} {account.user}:{account.password}\n", 0o600, secret=True
            ),
            ConfigFile(self.policy_map, policy + "\n", 0o644),
        ]
        prefix = (
            "postfix" if self.config_dir == DEFAULT_CONFIG_DIR else f"postfix -c {self.config_dir}"
        )
        commands = [f"{prefix} check", f"{prefix} reload"]
        return GeneratedConfig(self.mta, self.main_cf, settings, files, commands, notes)

    # -- apply --

    def apply_config(
        self, config: GeneratedConfig, *, confirm: bool = False, ca_file: str | None = None
    ) -> ApplyResult:
        """Write ``config`` with a backup, check it, reload; roll back if postfix rejects it."""
        if refused := refusal(confirm, self.config_dir, ca_file):
            return refused
        # A stale compiled form (sasl_passwd.db from an earlier "postmap hash:") would keep
        # the old password: it is rebuilt from the new text, and backed up like it.
        compiled = [(f, path, kind) for f in config.files for path, kind in _compiled_forms(f.path)]
        written = [self.main_cf, *(f.path for f in config.files), *(c for _, c, _ in compiled)]
        secret = [f.path for f in config.files if f.secret]
        secret += [path for f, path, _ in compiled if f.secret]
        # The entries of the relayhost configured so far: a switch of account replaces them.
        old = self._current_relayhost()
        drop = [old] if old and old != config.settings.get("relayhost") else []
        backup = take_backup(written, backup_stamp(), secret)
        try:
            for f in config.files:
                write_merged(f, drop)
            if not os.path.exists(self.main_cf):  # Debian's "No configuration" leaves none
                write_file(self.main_cf, "", 0o644)
        except OSError as exc:
            return write_failed(backup, exc)
        assignments = [f"{k}={v}" for k, v in config.settings.items()]
        steps = [
            (f"postmap {kind}:{f.path}", self._command("postmap", f"{kind}:{f.path}"))
            for f, _, kind in compiled
        ]
        steps += [
            (" ".join(step[:2]), self._command(*step))
            for step in (("postconf", "-e", *assignments), ("postfix", "check"))
        ]
        if rejected := rejection(backup, written, steps, COMMAND_TIMEOUT):
            return rejected
        return self._activate(backup, written)

    def _current_relayhost(self) -> str:
        if not os.path.isfile(self.main_cf):  # postfix commands stall without main.cf
            return ""
        return self.postconf("relayhost").get("relayhost", "")

    def _activate(self, backup: Backup, written: list[str]) -> ApplyResult:
        pid = self.master_pid()
        if pid is None:
            out, action = self._run("postfix", "start"), "started"
        else:
            old = children_of(pid)
            out, action = self._run("postfix", "reload"), "reloaded"
            # Processes of the old configuration finish their work first; a message
            # handed over before they are gone could still meet the old password.
            wait_gone(old, SETTLE_TIMEOUT)
        if out.returncode != 0:
            result = rolled_back(backup, written, f"postfix {action}", out)
            if pid is not None:
                self._run("postfix", "reload")  # the restored files become live again
            return result
        backup.finish()  # no rollback will need the old password map: its copies go
        return ApplyResult(
            ok=True,
            reason=Text(
                gettext_noop("configuration written and postfix started")
                if action == "started"
                else gettext_noop("configuration written and postfix reloaded")
            ),
            written=written,
            backups=backup.copies,
            action=action,
            output=out.text,
        )

    # -- test send --

    def queue(self) -> Queue:
        # -N never: a failed test makes no bounce (DSN NOTIFY=NEVER), so none can reach
        # the sender's mailbox before the failed message is removed.
        return Queue(
            self.mta,
            [self.sendmail_path(), "-N", "never"],
            self.handover_env(),
            self._follower,
        )

    def _follower(self, target: Target) -> PostfixFollower:
        settings = self.postconf("maillog_file")
        return PostfixFollower(
            self.log_path(settings),
            self._command("postqueue"),
            self._command("postsuper"),
            target,
            logged_in=lambda: self.logged_in(target),
        )

    def logged_in(self, target: Target) -> bool | None:
        """Whether a delivery just made logged in as ``target.user``; None when it cannot
        be told (the password map needs root). postfix logs no outbound login, so it is
        inferred: SASL on, the relayhost's map entry for that user, and a server that
        offers AUTH (cert_probe.offers_login), since postfix then always logs in and a
        refused login defers the mail (tested)."""
        status = RelayStatus(mta=self.mta, installed=True, config_path=self.main_cf)
        status.settings = self.postconf(*SETTINGS)
        self._relay_entries(status)
        if status.settings.get("smtp_sasl_auth_enable") != "yes":
            return False
        user = status.settings.get("relay_sasl_user")
        if user is None:
            return None if status.notes else False
        if user != target.user:
            return False
        return offers_login(target)

    def sendmail_path(self) -> str:
        found = self.postconf("sendmail_path") if os.path.isfile(self.main_cf) else {}
        return found.get("sendmail_path") or "/usr/sbin/sendmail"

    def plain_sendmail(self) -> str:
        """The sendmail any program can call to reach this postfix (with handover_env())."""
        return self.sendmail_path()

    def handover_env(self) -> dict[str, str]:
        # sendmail passes it on to postdrop; any program calling sendmail inherits it.
        return {} if self.config_dir == DEFAULT_CONFIG_DIR else {"MAIL_CONFIG": self.config_dir}


class PostfixComparison(Comparison):
    """The differences between postfix's effective settings and what the account needs."""

    mta = "postfix"

    def __init__(self, status: RelayStatus, account: RelayAccount, wanted: GeneratedConfig):
        super().__init__(status, account, wanted)
        self.want = wanted.settings
        self.key = relayhost_for(account)

    def _check(self) -> None:
        if not self.status.configured:
            self._add(
                "main.cf",
                "",
                self.status.config_path or "",
                gettext_noop("postfix has no %(path)s: apply the generated configuration"),
                path=self.status.config_path or "",
            )
            return
        self._relayhost()
        self._wrappermode()
        self._tls_level()
        self._ca()
        self._sasl()
        self._running()

    def _relayhost(self) -> None:
        have = self.have.get("relayhost", "")
        if have == self.key:
            return
        if not have:
            msgid = gettext_noop(
                "relayhost is not set, so postfix sends straight to the recipients' servers; "
                "set relayhost = %(key)s"
            )
        elif have.rpartition(":")[0] == self.key.rpartition(":")[0]:
            msgid = gettext_noop(
                "relayhost is %(have)s, account says port %(port)s: set relayhost = %(key)s"
            )
        else:
            msgid = gettext_noop(
                "relayhost is %(have)s, account says %(key)s: set relayhost = %(key)s"
            )
        self._add(
            "relayhost", have, self.key, msgid, have=have, port=self.account.port, key=self.key
        )

    def _wrappermode(self) -> None:
        have, want = self.have.get("smtp_tls_wrappermode", "no"), self.want["smtp_tls_wrappermode"]
        if have == want:
            return
        if want == "yes":
            msgid = gettext_noop(
                "relayhost is %(relay)s, account says port %(port)s with implicit TLS: "
                "set smtp_tls_wrappermode = yes"
            )
        else:
            msgid = gettext_noop(
                "smtp_tls_wrappermode is yes, but port %(port)s uses STARTTLS: "
                "set smtp_tls_wrappermode = no"
            )
        relay = shown(self.have.get("relayhost", ""))
        self._add("smtp_tls_wrappermode", have, want, msgid, relay=relay, port=self.account.port)

    def _tls_level(self) -> None:
        level = self.have.get("smtp_tls_security_level", "")
        policy = self.have.get("relay_tls_policy", "")
        effective = policy.split()[0] if policy else level
        if effective not in ("encrypt", "secure", "verify", "dane-only", "fingerprint"):
            level_shown = effective or "none"
            self._add(
                "smtp_tls_security_level",
                level_shown,
                "encrypt",
                gettext_noop(
                    "TLS is not required (level %(level)s): the password could travel "
                    "unencrypted; set smtp_tls_security_level = encrypt"
                ),
                level=level_shown,
            )
        name = self.account.certificate_name
        if name and not (effective == "secure" and f"match={name}" in policy):
            wanted = f"{self.key} secure match={name}"
            self._add(
                "smtp_tls_policy_maps",
                policy or str(NOT_SET),
                wanted,
                gettext_noop(
                    "the server certificate's name is not checked against %(name)s: add "
                    "'%(wanted)s' to smtp_tls_policy_maps"
                ),
                name=name,
                wanted=wanted,
            )

    def _ca(self) -> None:
        want = self.want["smtp_tls_CAfile"]
        have = self.have.get("smtp_tls_CAfile", "")
        if self.account.ca_file is None and (have or self.have.get("smtp_tls_CApath")):
            return  # some trust store is configured; the system's bundle is only our default
        if have != want:
            self._add(
                "smtp_tls_CAfile",
                have,
                want,
                gettext_noop(
                    "smtp_tls_CAfile is %(have)s, the account's certificate needs %(want)s: "
                    "set smtp_tls_CAfile = %(want)s"
                ),
                have=shown(have),
                want=want,
            )

    def _sasl(self) -> None:
        if self.have.get("smtp_sasl_auth_enable") != "yes":
            self._add(
                "smtp_sasl_auth_enable",
                self.have.get("smtp_sasl_auth_enable", ""),
                "yes",
                gettext_noop(
                    "postfix does not log in to the relay: set smtp_sasl_auth_enable = yes"
                ),
            )
        options = self.have.get("smtp_sasl_security_options", "")
        if "noplaintext" in options:
            self._add(
                "smtp_sasl_security_options",
                options,
                "noanonymous",
                gettext_noop(
                    "smtp_sasl_security_options = %(options)s forbids PLAIN and LOGIN, which "
                    "most servers need: set smtp_sasl_security_options = noanonymous"
                ),
                options=options,
            )
        self._sasl_entry()

    def _sasl_entry(self) -> None:
        user = self.have.get("relay_sasl_user")
        maps = self.have.get("smtp_sasl_password_maps", "")
        if user is None:
            if self.have.get("relayhost") == self.key or not maps:
                self._add(
                    "smtp_sasl_password_maps",
                    maps or str(NOT_SET),
                    f"{self.key} {self.account.user}:…",
                    gettext_noop("the password map (%(maps)s) has no entry for %(key)s"),
                    maps=shown(maps),
                    key=self.key,
                )
            return
        self._login(
            user,
            ("relay_sasl_user", "relay_sasl_password"),
            Text(gettext_noop("postfix's map for %(key)s"), {"key": self.key}),
        )

    def _running(self) -> None:
        if self.status.running is False:
            self._add(
                "running",
                "no",
                "yes",
                gettext_noop("postfix is not running: mail waits in the queue (apply starts it)"),
            )
