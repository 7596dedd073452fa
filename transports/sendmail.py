"""``sendmail`` of a local relay (postfix, exim): it only queues.

sendmail exits 0 as soon as the message is in the local queue, whether or
not the relay can ever deliver it. So a 0 here is "queued, delivery not
verified" and never a pass; following the queue to delivery is the relay
check's job.
"""

from __future__ import annotations

import os
import shutil

from .base import SendResult, Step, Target
from .classify import failure
from .command import CommandTransport, Invocation
from .run import RunOutput
from .secrecy import PrivateDir

SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


class PostfixSendmail(CommandTransport):
    key = "postfix"
    binary = "sendmail"
    candidates = ("/usr/sbin/sendmail",)
    relay = "postfix"

    def which(self) -> str | None:
        # /usr/sbin/sendmail is postfix's only where postfix is installed.
        if not self._executable and not shutil.which("postconf", path=SBIN_PATH):
            return None
        return super().which()

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        # The relay logs in with its own configured account: no password here at all.
        return Invocation([exe, "-i", "-f", target.sender, "--", target.recipient], stdin=message)

    def outcome(self, out: RunOutput, target: Target) -> SendResult:
        if out.returncode != 0:
            return failure(out, target, Step.QUEUE)
        return SendResult(
            ok=False,
            step=Step.QUEUE,
            reason=(
                f"queued by the local {self.relay}, delivery not verified: sendmail returns "
                "as soon as the message is queued"
            ),
            exit_code=0,
            delivered=None,
        )


class EximSendmail(PostfixSendmail):
    key = "exim"
    binary = "exim4"
    candidates = ("exim", "/usr/sbin/exim4", "/usr/sbin/exim")
    relay = "exim"
