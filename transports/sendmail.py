"""``sendmail`` of a local relay (postfix, exim): it only queues, so the relay is followed.

sendmail exits 0 as soon as the message is in the local queue, whether or not
the relay can ever deliver it. So the message is followed through the relay's
log and queue (:mod:`transports.relay`) and the result is a pass only once the
relay has delivered it. When there is no relay to follow (a stand-in sendmail
given as the executable), a 0 stays "queued, delivery not verified": never a pass.
"""

from __future__ import annotations

import os
from typing import ClassVar

from .base import SendResult, Step, Target
from .classify import failure
from .command import CommandTransport, Invocation
from .detection import Detection, apply_tls, located, missing
from .relay import EximRelay, PostfixRelay, Relay
from .run import RunOutput, locate, which
from .secrecy import PrivateDir
from .texts import Text, gettext_noop
from .tlsinfo import CachedRun, RunFn, resolve_tls_library
from .versions import VersionInfo, parse_assignments, parse_exim_version

# Where Debian's postfix keeps its daemons when postconf does not say.
POSTFIX_DAEMONS = "/usr/lib/postfix/sbin"


class RelaySendmail(CommandTransport):
    """A relay's sendmail: hand the message over, then follow the relay to delivery."""

    reads_ca_file = False
    relay_name: ClassVar[str]

    def __init__(self, executable: str | None = None, relay: Relay | None = None) -> None:
        """``relay``: the relay to follow (e.g. a private instance). Without one, the
        system's relay is followed, unless ``executable`` names another sendmail."""
        super().__init__(executable)
        self._relay = relay

    def system_relay(self) -> Relay | None:
        """The machine's own relay of this kind, or None where it is not installed."""
        raise NotImplementedError

    def follows(self) -> Relay | None:
        """The relay whose queue this transport's sendmail feeds, if that is known."""
        if self._relay is not None:
            return self._relay
        if self._executable:
            return None  # some other sendmail: which queue it feeds is anybody's guess
        return self.system_relay()

    def which(self) -> str | None:
        relay = self.follows()
        if relay is not None:
            return locate((relay.sendmail_path(),))
        return super().which() if self._executable else None

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        relay = self.follows()
        if relay is None:
            return super()._send(exe, target, message)
        ready, why = relay.ready()
        if not ready:
            return SendResult(
                ok=False,
                step=Step.QUEUE,
                reason=Text(
                    gettext_noop("not handed over: %(why)s, so nothing would deliver the message"),
                    {"why": why},
                ),
                reason_code="relay_not_ready",
            )
        return relay.test_send(target, message)

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        # The relay logs in with its own configured account: no password here at all.
        return Invocation([exe, "-i", "-f", target.sender, "--", target.recipient], stdin=message)

    def outcome(self, out: RunOutput, target: Target) -> SendResult:
        if out.returncode != 0:
            return failure(out, target, Step.QUEUE)
        return SendResult(
            ok=False,
            step=Step.QUEUE,
            reason=Text(
                gettext_noop(
                    "queued by the local %(mta)s, delivery not verified: sendmail returns as "
                    "soon as the message is queued"
                ),
                {"mta": self.relay_name},
            ),
            reason_code="queued_unverified",
            exit_code=0,
            delivered=None,
        )


# ---------------------------------------------------------------------------------------
# postfix: sendmail queues, the smtp daemon does the TLS


def _postfix_params(postconf: str, run_fn: RunFn) -> tuple[dict[str, str], bool]:
    """mail_version, daemon_directory, sendmail_path; and whether there is a main.cf."""
    names = ("daemon_directory", "sendmail_path")
    params = parse_assignments(
        run_fn([postconf, "-d", "mail_version", "config_directory", *names]).stdout
    )
    # Without main.cf every postfix command dies with "fatal" after a 1 s pause: don't ask.
    main_cf = os.path.join(params.get("config_directory") or "/etc/postfix", "main.cf")
    if not os.path.isfile(main_cf):
        return params, False
    configured = run_fn([postconf, *names])
    if configured.returncode == 0:
        params.update(parse_assignments(configured.stdout))
    return params, True


def _postfix_status(postconf: str, run_fn: RunFn) -> Text:
    postfix = which("postfix") or os.path.join(os.path.dirname(postconf), "postfix")
    out = run_fn([postfix, "status"])
    if out.returncode == 0:
        return Text(gettext_noop("the postfix master is running"))
    if "superuser" in out.text:
        return Text(gettext_noop("postfix status needs root: not checked"))
    return Text(gettext_noop("the postfix master is not running (postfix start)"))


class PostfixSendmail(RelaySendmail):
    key = "postfix"
    binary = "sendmail"
    relay_name = "postfix"

    def system_relay(self) -> Relay | None:
        # /usr/sbin/sendmail is postfix's only where postfix is installed.
        return PostfixRelay() if which("postconf") else None

    @classmethod
    def detect(cls, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
        """The sendmail postconf names; its TLS library is the one of the smtp daemon."""
        run_fn = run_fn or CachedRun()
        postconf = which("postconf")
        if postconf is None:
            return missing(Detection(key=cls.key, found=False), ("postconf",), None)
        params, configured = _postfix_params(postconf, run_fn)
        sendmail = params.get("sendmail_path") or "/usr/sbin/sendmail"
        det, exe = located(cls.key, (sendmail,), executable, run_fn)
        if exe is None:
            return missing(det, ("sendmail",), executable)
        det.version = params.get("mail_version")
        if configured:
            det.add_note(_postfix_status(postconf, run_fn))
        else:
            det.add_note(
                Text(
                    gettext_noop(
                        "no main.cf: postfix is installed but not configured and not running"
                    )
                )
            )
        smtp = os.path.join(params.get("daemon_directory") or POSTFIX_DAEMONS, "smtp")
        apply_tls(det, resolve_tls_library(smtp, run_fn), VersionInfo())
        return det


# ---------------------------------------------------------------------------------------
# exim: one binary is sendmail, queue runner and SMTP client


class EximSendmail(RelaySendmail):
    key = "exim"
    binary = "exim4"
    candidates = ("exim",)
    relay_name = "exim"
    version_args = (("-bV",),)
    parse_version = staticmethod(parse_exim_version)

    def system_relay(self) -> Relay | None:
        binary = locate(self.names())
        return EximRelay(binary=binary) if binary else None

    @classmethod
    def detect(cls, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
        det = super().detect(executable, run_fn=run_fn)
        if det.found and det.version is None:
            # -bV reads the configuration and needs the compiled-in user (Debian-exim): if
            # it fails, a send fails the same way.
            det.usable = False
        return det
