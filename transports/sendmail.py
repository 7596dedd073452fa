"""``sendmail`` of a local relay (postfix, exim): it only queues, so the relay is followed.

sendmail exits 0 as soon as the message is in the local queue, whether or not
the relay can ever deliver it. So the message is followed through the relay's
log and queue (:mod:`transports.relay`) and the result is a pass only once the
relay has delivered it. When there is no relay to follow (a stand-in sendmail
given as the executable), a 0 stays "queued, delivery not verified": never a pass.
"""

from __future__ import annotations

import os
import shutil

from .base import SendResult, Step, Target
from .classify import failure
from .command import CommandTransport, Invocation
from .relay import EximRelay, PostfixRelay
from .run import RunOutput
from .secrecy import PrivateDir
from .texts import Text, gettext_noop

SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


class PostfixSendmail(CommandTransport):
    key = "postfix"
    reads_ca_file = False
    binary = "sendmail"
    candidates = ("/usr/sbin/sendmail",)
    relay_name = "postfix"

    def __init__(
        self, executable: str | None = None, relay: PostfixRelay | EximRelay | None = None
    ) -> None:
        """``relay``: the relay to follow (e.g. a private instance). Without one, the
        system's relay is followed, unless ``executable`` names another sendmail."""
        super().__init__(executable)
        self._relay = relay

    def follows(self) -> PostfixRelay | EximRelay | None:
        """The relay whose queue this transport's sendmail feeds, if that is known."""
        if self._relay is not None:
            return self._relay
        if self._executable:
            return None  # some other sendmail: which queue it feeds is anybody's guess
        return self.system_relay()

    def system_relay(self) -> PostfixRelay | EximRelay:
        return PostfixRelay()

    def which(self) -> str | None:
        if self._relay is not None:
            return self._relay.sendmail_path()
        # /usr/sbin/sendmail is postfix's only where postfix is installed.
        if not self._executable and not shutil.which("postconf", path=SBIN_PATH):
            return None
        return super().which()

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


class EximSendmail(PostfixSendmail):
    key = "exim"
    binary = "exim4"
    candidates = ("exim", "/usr/sbin/exim4", "/usr/sbin/exim")
    relay_name = "exim"

    def system_relay(self) -> EximRelay:
        return EximRelay(binary=super(PostfixSendmail, self).which())

    def which(self) -> str | None:
        if self._relay is not None:
            return self._relay.sendmail_path()
        return super(PostfixSendmail, self).which()
