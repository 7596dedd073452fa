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
from ..detection import detect, which
from ..run import RunOutput, run
from ..versions import parse_assignments
from .applying import ConfiguredRelay, refusal, rejection, rolled_back, write_failed
from .comparing import NOT_SET, Comparison
from .files import Backup, backup_stamp, take_backup, write_file, write_merged
from .model import (
    SYSTEM_CA_FILE,
    ApplyResult,
    ConfigFile,
    Difference,
    GeneratedConfig,
    RelayAccount,
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


def _map_files(value: str) -> list[str]:
    """``texthash:/a, hash:/b`` -> the lookup tables, as postmap takes them."""
    return [m for m in value.replace(",", " ").split() if ":" in m]


class PostfixRelay(ConfiguredRelay):
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

    def ready(self) -> tuple[bool, str]:
        """Whether a message handed to this postfix can be followed to delivery."""
        if not which("postconf"):
            return False, "postfix is not installed"
        if not os.path.isfile(self.main_cf):
            return False, f"postfix has no {self.main_cf}: it is not configured"
        if self.master_pid() is None:
            return False, "postfix is not running (postfix start)"
        return True, "postfix is running"

    def log_path(self, settings: dict[str, str]) -> str | None:
        if settings.get("maillog_file"):
            return settings["maillog_file"]
        return next((f for f in SYSLOG_FILES if os.path.isfile(f)), None)

    def status(self) -> RelayStatus:
        status = RelayStatus(mta=self.mta, installed=False, config_path=self.main_cf)
        if not which("postconf"):
            status.notes.append("postfix is not installed (no postconf)")
            return status
        status.installed = True
        status.version = parse_assignments(
            run(
                [which("postconf") or "postconf", "-d", "mail_version"], timeout=COMMAND_TIMEOUT
            ).stdout
        ).get("mail_version")
        status.take_tls(detect("postfix"))
        status.configured = os.path.isfile(self.main_cf)
        if not status.configured:
            # Every postfix command dies after a pause without main.cf: ask nothing more.
            status.running = False
            status.notes.append(f"no {self.main_cf}: postfix is installed but not configured")
            return status
        settings = self.postconf(*SETTINGS)
        status.settings = {name: settings.get(name, "") for name in SETTINGS}
        status.running = self.master_pid(settings.get("queue_directory")) is not None
        status.log_path = self.log_path(settings)
        if status.log_path and not os.access(status.log_path, os.R_OK):
            status.notes.append(f"the mail log {status.log_path} is not readable")
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
                status.notes.append("the SASL password map could not be read (needs root)")

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
                f"the relay is given as the address {account.host}: postfix cannot check "
                "the certificate's name against an address; give the name on the "
                "certificate (tls_name) to get a verified connection"
            )
        if account.mode_mismatch:
            notes.append(
                f"port {account.port} with {account.mode.value}: the usual rule is 465 = "
                "implicit TLS, others STARTTLS"
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
        written = [self.main_cf, *(f.path for f in config.files)]
        backup = take_backup(written, backup_stamp())
        try:
            for f in config.files:
                write_merged(f)
            if not os.path.exists(self.main_cf):  # Debian's "No configuration" leaves none
                write_file(self.main_cf, "", 0o644)
        except OSError as exc:
            return write_failed(backup, exc)
        assignments = [f"{k}={v}" for k, v in config.settings.items()]
        steps = [
            (" ".join(step[:2]), self._command(*step))
            for step in (("postconf", "-e", *assignments), ("postfix", "check"))
        ]
        if rejected := rejection(backup, written, steps, COMMAND_TIMEOUT):
            return rejected
        return self._activate(backup, written)

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
        return ApplyResult(
            ok=True,
            reason=f"configuration written and postfix {action}",
            reason_de="Konfiguration geschrieben und postfix "
            + ("gestartet" if action == "started" else "neu geladen"),
            written=written,
            backups=backup.copies,
            action=action,
            output=out.text,
        )

    # -- test send --

    def follower(self, message_id: str, target: Target) -> PostfixFollower:
        settings = self.postconf("maillog_file")
        return PostfixFollower(
            self.log_path(settings),
            self._command("postqueue"),
            self._command("postsuper"),
            target,
        )

    def sendmail_path(self) -> str:
        found = self.postconf("sendmail_path") if os.path.isfile(self.main_cf) else {}
        return found.get("sendmail_path") or "/usr/sbin/sendmail"

    def sendmail_argv(self, target: Target) -> list[str]:
        return [self.sendmail_path(), "-i", "-f", target.sender, "--", target.recipient]

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
                f"postfix has no {self.status.config_path}: apply the generated configuration",
                f"postfix hat keine {self.status.config_path}: die erzeugte Konfiguration "
                "übernehmen",
            )
            return
        self._relayhost()
        self._wrappermode()
        self._tls_level()
        self._ca()
        self._sasl()
        self._running()

    def _show(self, name: str) -> tuple[str, str]:
        value = self.have.get(name, "")
        return (value, value) if value else NOT_SET

    def _relayhost(self) -> None:
        have = self.have.get("relayhost", "")
        if have == self.key:
            return
        fix_en, fix_de = f"set relayhost = {self.key}", f"relayhost = {self.key} setzen"
        if not have:
            en = (
                "relayhost is not set, so postfix sends straight to the recipients' servers; "
                + fix_en
            )
            de = (
                "relayhost ist nicht gesetzt, postfix stellt also direkt an die Server der "
                f"Empfänger zu; {fix_de}"
            )
        elif have.rpartition(":")[0] == self.key.rpartition(":")[0]:
            en = f"relayhost is {have}, account says port {self.account.port}: {fix_en}"
            de = f"relayhost ist {have}, das Konto nennt Port {self.account.port}: {fix_de}"
        else:
            en = f"relayhost is {have}, account says {self.key}: {fix_en}"
            de = f"relayhost ist {have}, das Konto nennt {self.key}: {fix_de}"
        self._add("relayhost", have, self.key, en, de)

    def _wrappermode(self) -> None:
        have, want = self.have.get("smtp_tls_wrappermode", "no"), self.want["smtp_tls_wrappermode"]
        if have == want:
            return
        relay = self.have.get("relayhost") or NOT_SET[0]
        if want == "yes":
            en = (
                f"relayhost is {relay}, account says port {self.account.port} with implicit TLS: "
                "set smtp_tls_wrappermode = yes"
            )
            de = (
                f"relayhost ist {relay}, das Konto nennt Port {self.account.port} mit "
                "implizitem TLS: smtp_tls_wrappermode = yes setzen"
            )
        else:
            en = (
                f"smtp_tls_wrappermode is yes, but port {self.account.port} uses STARTTLS: "
                "set smtp_tls_wrappermode = no"
            )
            de = (
                f"smtp_tls_wrappermode ist yes, Port {self.account.port} nutzt aber STARTTLS: "
                "smtp_tls_wrappermode = no setzen"
            )
        self._add("smtp_tls_wrappermode", have, want, en, de)

    def _tls_level(self) -> None:
        level = self.have.get("smtp_tls_security_level", "")
        policy = self.have.get("relay_tls_policy", "")
        effective = policy.split()[0] if policy else level
        if effective not in ("encrypt", "secure", "verify", "dane-only", "fingerprint"):
            shown = effective or "none"
            self._add(
                "smtp_tls_security_level",
                shown,
                "encrypt",
                f"TLS is not required (level {shown}): the password could travel unencrypted; "
                "set smtp_tls_security_level = encrypt",
                f"TLS ist nicht vorgeschrieben (Stufe {shown}): das Passwort könnte "
                "unverschlüsselt übertragen werden; smtp_tls_security_level = encrypt setzen",
            )
        name = self.account.certificate_name
        if name and not (effective == "secure" and f"match={name}" in policy):
            wanted = f"{self.key} secure match={name}"
            self._add(
                "smtp_tls_policy_maps",
                policy or NOT_SET[0],
                wanted,
                f"the server certificate's name is not checked against {name}: add "
                f"'{wanted}' to smtp_tls_policy_maps",
                f"der Name im Serverzertifikat wird nicht gegen {name} geprüft: "
                f"'{wanted}' in smtp_tls_policy_maps eintragen",
            )

    def _ca(self) -> None:
        want = self.want["smtp_tls_CAfile"]
        have = self.have.get("smtp_tls_CAfile", "")
        if self.account.ca_file is None and (have or self.have.get("smtp_tls_CApath")):
            return  # some trust store is configured; the system's bundle is only our default
        if have != want:
            shown, shown_de = self._show("smtp_tls_CAfile")
            self._add(
                "smtp_tls_CAfile",
                have,
                want,
                f"smtp_tls_CAfile is {shown}, the account's certificate needs {want}: "
                f"set smtp_tls_CAfile = {want}",
                f"smtp_tls_CAfile ist {shown_de}, das Zertifikat des Kontos braucht {want}: "
                f"smtp_tls_CAfile = {want} setzen",
            )

    def _sasl(self) -> None:
        if self.have.get("smtp_sasl_auth_enable") != "yes":
            self._add(
                "smtp_sasl_auth_enable",
                self.have.get("smtp_sasl_auth_enable", ""),
                "yes",
                "postfix does not log in to the relay: set smtp_sasl_auth_enable = yes",
                "postfix meldet sich nicht am Relay an: smtp_sasl_auth_enable = yes setzen",
            )
        options = self.have.get("smtp_sasl_security_options", "")
        if "noplaintext" in options:
            self._add(
                "smtp_sasl_security_options",
                options,
                "noanonymous",
                f"smtp_sasl_security_options = {options} forbids PLAIN and LOGIN, which most "
                "servers need: set smtp_sasl_security_options = noanonymous",
                f"smtp_sasl_security_options = {options} verbietet PLAIN und LOGIN, die die "
                "meisten Server brauchen: smtp_sasl_security_options = noanonymous setzen",
            )
        self._sasl_entry()

    def _sasl_entry(self) -> None:
        user = self.have.get("relay_sasl_user")
        maps = self.have.get("smtp_sasl_password_maps", "")
        if user is None:
            if self.have.get("relayhost") == self.key or not maps:
                where = maps or NOT_SET[0]
                self._add(
                    "smtp_sasl_password_maps",
                    where,
                    f"{self.key} {self.account.user}:…",
                    f"the password map ({where}) has no entry for {self.key}",
                    f"die Passwort-Tabelle ({maps or NOT_SET[1]}) hat keinen Eintrag "
                    f"für {self.key}",
                )
            return
        self._login(
            user,
            ("relay_sasl_user", "relay_sasl_password"),
            (f"postfix's map for {self.key}", f"der Tabelle von postfix für {self.key}"),
        )

    def _running(self) -> None:
        if self.status.running is False:
            self._add(
                "running",
                "no",
                "yes",
                "postfix is not running: mail waits in the queue (apply starts it)",
                "postfix läuft nicht: Mails bleiben in der Warteschlange (Übernehmen startet es)",
            )
