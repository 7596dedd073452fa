"""Following one message through a relay's queue until it is delivered or not.

``sendmail`` exits 0 as soon as the relay has queued the message. What happens
next is only in the relay's log and queue, so a test send hands the message
over, finds it by its Message-ID, and reads on until the relay says delivered,
deferred or bounced, or the time is up. Only "delivered" is a pass.

The MTA-specific parts (log format, queue commands) live in a :class:`Follower`;
the loop, the result and the hand-over (:class:`Queue`, which a relay hands out from
``relay.queue()``) are shared here.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import enum
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..base import SendResult, Step, Target, tls_name
from ..classify import failure, reason_code, reason_for, step_from_text
from ..run import RunOutput, run
from ..secrecy import redact
from ..texts import Text, gettext_noop

POLL_INTERVAL = 0.1
# After a bounce the relay writes the bounce message's arrival right away: reading on
# a moment longer finds it, so a failed test can remove that too.
BOUNCE_GRACE = 0.5
# A log is read in bounded pieces: a busy server's log must not fill our memory.
READ_LIMIT = 4 * 1024 * 1024


class QueueState(enum.StrEnum):
    UNSEEN = "unseen"  # handed over, not yet found in the log or queue
    QUEUED = "queued"  # in the queue, no verdict yet
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    GONE = "gone"  # left the queue with no log line saying how


FINAL = {QueueState.DELIVERED, QueueState.DEFERRED, QueueState.BOUNCED, QueueState.GONE}


@dataclass
class Tracking:
    """What is known about one message in the relay, gathered while following it."""

    message_id: str
    queue_id: str | None = None
    state: QueueState = QueueState.UNSEEN
    reason: str = ""  # the relay's words about the last attempt
    remote: str = ""  # where it went, as the relay names it
    tls_version: str | None = None
    tls_verified: bool | None = None
    auth_failure: str = ""  # an authenticator's complaint before the verdict (exim)
    # Whether the delivery logged in; None where the relay's log does not say (postfix).
    authenticated: bool | None = None
    queue_name: str = ""  # active / deferred / ... at the last look
    children: list[str] = field(default_factory=list)  # bounce messages made from it
    lines: list[str] = field(default_factory=list)  # the relay's lines about it

    @property
    def ids(self) -> list[str]:
        return [i for i in (self.queue_id, *self.children) if i]


class Follower(Protocol):
    """The MTA-specific part: where to look and how to read it."""

    def poll(self, tracking: Tracking) -> None:
        """Read what is new in the log (and queue) and update ``tracking``."""

    def after_hand_over(self, tracking: Tracking, timeout: float) -> None:
        """Once the hand-over command has ended: make sure a delivery is under way."""

    def last_look(self, tracking: Tracking) -> None:
        """At the deadline: ask the queue why the message is still there."""

    def discard(self, tracking: Tracking) -> str:
        """Remove the test message (and its bounces) from the queue; say what happened."""


class LogTail:
    """Reads a log file from where it ended when the tail was made; copes with rotation."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._pending = ""
        self.error = "" if path else "no log file"
        self._inode, self._offset = None, 0
        if not path:
            return
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return  # a fresh relay writes its log with the first message: read from 0
        except OSError as exc:
            self.error = str(exc)
            return
        self._inode, self._offset = st.st_ino, st.st_size
        if not os.access(path, os.R_OK):
            self.error = f"{path} is not readable"

    @property
    def usable(self) -> bool:
        """A log that can be read and is there (the queue is asked while it is not)."""
        return bool(self.path) and not self.error and os.path.exists(self.path or "")

    def lines(self) -> list[str]:
        if not self.path:
            return []
        try:
            st = os.stat(self.path)
            if st.st_ino != self._inode or st.st_size < self._offset:
                # Rotated or truncated: the new file starts over, a half line is lost.
                self._inode, self._offset, self._pending = st.st_ino, 0, ""
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read(READ_LIMIT)
        except FileNotFoundError:
            return []  # a log that does not exist yet appears with the first line
        except OSError as exc:
            self.error = str(exc)
            return []
        self._offset += len(data)
        text = self._pending + data.decode("utf-8", "replace")
        complete, _, self._pending = text.rpartition("\n")
        return complete.splitlines() if complete else []


def follow(follower: Follower, tracking: Tracking, timeout: float) -> None:
    """Poll until the message reaches a final state or ``timeout`` ends."""
    deadline = time.monotonic() + timeout
    while True:
        follower.poll(tracking)
        if tracking.state in FINAL:
            if tracking.state is QueueState.BOUNCED:
                time.sleep(BOUNCE_GRACE)
                follower.poll(tracking)
            break
        if time.monotonic() >= deadline:
            follower.last_look(tracking)
            break
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


# --- the message -----------------------------------------------------------------------


def _header_end(message: bytes) -> int:
    match = re.search(rb"\r?\n\r?\n", message)
    return match.start() if match else len(message)


def message_id_of(message: bytes) -> str | None:
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
        message[: _header_end(message)]
    )
    value = headers.get("Message-ID")
    return " ".join(str(value).split()) if value else None


def with_message_id(message: bytes, sender: str) -> tuple[bytes, str]:
    """The message and its Message-ID; one is added when missing, since that is how the
    message is found again in the relay's log."""
    found = message_id_of(message)
    if found:
        return message, found
    new = email.utils.make_msgid(idstring="xmailadmin", domain=sender.rpartition("@")[2])
    newline = b"\r\n" if b"\r\n" in message[: _header_end(message) + 2] else b"\n"
    return b"Message-ID: " + new.encode() + newline + message, new


def same_message_id(a: str, b: str) -> bool:
    return a.strip().strip("<>").lower() == b.strip().strip("<>").lower()


def discard_note(out: RunOutput, ids: Sequence[str]) -> str:
    """A transcript line saying what became of a failed test message: in the queue tool's
    own words, since a message delivered a moment ago is no longer there to remove."""
    said = out.text or out.error
    if out.returncode == 0:
        return f"xmailadmin: removing {', '.join(ids)} from the queue: {said or 'done'}"
    return f"xmailadmin: removing {', '.join(ids)} from the queue failed: {said}"


def queue_note(tracking: Tracking, mta: str) -> str:
    """The transcript when the relay's log gave no line of the message (no readable mail
    log): what its queue showed instead, so the page has more than "(no transcript)"."""
    if tracking.queue_id is None:
        return f"xmailadmin: {mta}: no log line and no queue entry of {tracking.message_id}"
    seen = f"{tracking.state.value}" + (f" in {tracking.queue_name}" if tracking.queue_name else "")
    why = f": {tracking.reason}" if tracking.reason else ""
    return (
        f"xmailadmin: {mta}: no log line of {tracking.message_id} could be read; in the "
        f"queue as {tracking.queue_id}, last seen {seen}{why}"
    )


# --- from a tracking to a result --------------------------------------------------------


# What relays say that the mail commands' patterns do not know.
_RELAY_STEPS = [
    # A client waiting for "220" while the server waits for a TLS hello: the mode is wrong.
    (re.compile(r"while receiving the initial server greeting", re.I), Step.TLS),
]


def relay_step(detail: str) -> Step:
    for pattern, step in _RELAY_STEPS:
        if pattern.search(detail):
            return step
    return step_from_text(detail)


def _is_account_server(remote: str, target: Target) -> bool:
    """Whether the relay's "host[address]:port" (postfix) or "host [address]" (exim) is
    the account's server; exim names no port unless its log selector asks for it."""
    names = re.findall(r"[^\s\[\]]+", re.sub(r":\d+$", "", remote))
    port = re.search(r"\]:(\d+)$", remote)
    same_host = target.host.lower() in (n.lower() for n in names)
    return same_host and (port is None or int(port.group(1)) == target.port)


# The verdicts of a followed message that say how it ended; the panel tells them apart.
DELIVERED_BY = gettext_noop("delivered by the local %(mta)s to %(remote)s: %(said)s")
DEFERRED_BY = gettext_noop("deferred by the local %(mta)s%(ids)s: %(said)s")
BOUNCED_BY = gettext_noop("bounced by the local %(mta)s%(ids)s: %(said)s")


def _ids(tracking: Tracking) -> Text | str:
    if not tracking.queue_id:
        return ""
    return Text(gettext_noop(" (queue ID %(id)s)"), {"id": tracking.queue_id})


def _delivered(tracking: Tracking, target: Target, mta: str) -> SendResult:
    remote = tracking.remote or Text(gettext_noop("the relay"))
    if tracking.authenticated is False:
        # Delivered, but not as the account: a server that takes mail from anyone proves
        # nothing about the account's password (and the relay should have refused).
        return SendResult(
            ok=False,
            step=Step.AUTH,
            reason=Text(
                gettext_noop(
                    "the local %(mta)s delivered to %(remote)s without logging in as "
                    "%(user)s: not counted as a pass (require the login in the relay's "
                    "configuration)"
                ),
                {"mta": mta, "remote": remote, "user": target.user},
            ),
            reason_code="relay_not_authenticated",
            delivered=True,
            detail=tracking.reason,
        )
    result = SendResult(
        ok=True,
        step=Step.DONE,
        reason=Text(DELIVERED_BY, {"mta": mta, "remote": remote, "said": tracking.reason}),
        reason_code=Step.DONE.value,
        tls_version=tls_name(tracking.tls_version),
        verified=bool(tracking.tls_verified),
        delivered=True,
        detail=tracking.reason,
    )
    if not tracking.tls_verified:
        result.warnings.append(
            Text(
                gettext_noop(
                    "the local %(mta)s did not report a verified server certificate for "
                    "this delivery"
                ),
                {"mta": mta},
            )
        )
    if tracking.remote and not _is_account_server(tracking.remote, target):
        result.warnings.append(
            Text(
                gettext_noop(
                    "the local %(mta)s delivered to %(remote)s, not to the account's server "
                    "%(server)s: its relay configuration names another server"
                ),
                {"mta": mta, "remote": tracking.remote, "server": f"{target.host}:{target.port}"},
            )
        )
    return result


def _refused(tracking: Tracking, target: Target, mta: str) -> SendResult:
    detail = tracking.reason
    if tracking.auth_failure and tracking.auth_failure not in detail:
        detail = f"{tracking.auth_failure}; then: {detail}"
    step = relay_step(detail)
    said = reason_for(step, target, detail) if step is not Step.UNKNOWN else detail
    msgid = BOUNCED_BY if tracking.state is QueueState.BOUNCED else DEFERRED_BY
    return SendResult(
        ok=False,
        step=step,
        reason=Text(msgid, {"mta": mta, "ids": _ids(tracking), "said": said}),
        reason_code=reason_code(step, detail),
        delivered=False,
        detail=detail,
    )


def _gone(tracking: Tracking, mta: str) -> SendResult:
    return SendResult(
        ok=False,
        step=Step.QUEUE,
        reason=Text(
            gettext_noop(
                "the message left the queue of the local %(mta)s%(ids)s, but no log line "
                "says it was delivered: not counted as a pass (make the mail log readable)"
            ),
            {"mta": mta, "ids": _ids(tracking)},
        ),
        reason_code="left_queue_unconfirmed",
        delivered=None,
    )


def _still_queued(tracking: Tracking, mta: str, waited: float) -> SendResult:
    if tracking.queue_name:
        msgid = gettext_noop(
            "still queued in the %(queue)s queue of the local %(mta)s%(ids)s after %(seconds)s s"
        )
    else:
        msgid = gettext_noop("still queued at the local %(mta)s%(ids)s after %(seconds)s s")
    params = {"queue": tracking.queue_name, "mta": mta, "ids": _ids(tracking)}
    reason = Text(msgid, {**params, "seconds": f"{waited:.0f}"})
    if tracking.reason:
        reason = Text(
            gettext_noop("%(reason)s; last reason: %(said)s"),
            {"reason": reason, "said": tracking.reason},
        )
    return SendResult(
        ok=False,
        step=Step.TIMEOUT,
        reason=reason,
        reason_code="still_queued",
        delivered=False,
        detail=tracking.reason,
    )


def _unseen(mta: str, waited: float) -> SendResult:
    return SendResult(
        ok=False,
        step=Step.QUEUE,
        reason=Text(
            gettext_noop(
                "the local %(mta)s accepted the message but it did not show up in its log or "
                "queue within %(seconds)s s: is %(mta)s running, and is its log readable?"
            ),
            {"mta": mta, "seconds": f"{waited:.0f}"},
        ),
        reason_code="not_in_queue",
        delivered=None,
    )


def result_of(tracking: Tracking, target: Target, mta: str, waited: float) -> SendResult:
    """The SendResult for a followed message: a pass only when the relay delivered it."""
    if tracking.state is QueueState.DELIVERED:
        return _delivered(tracking, target, mta)
    if tracking.state in (QueueState.DEFERRED, QueueState.BOUNCED):
        return _refused(tracking, target, mta)
    if tracking.state is QueueState.GONE:
        return _gone(tracking, mta)
    if tracking.state is QueueState.QUEUED:
        return _still_queued(tracking, mta, waited)
    return _unseen(mta, waited)


def redacted(result: SendResult, target: Target) -> SendResult:
    """``result`` with the account's password (and its encodings) taken out of every text:
    the one place on the relay path where secrets are removed, as the result leaves."""

    def clean(text: str) -> str:
        return redact(text, target.user, target.password)

    result.transcript, result.detail = clean(result.transcript), clean(result.detail)
    result.reason = result.reason.map(clean)
    result.warnings = [w.map(clean) for w in result.warnings]
    return result


# --- handing a message over -----------------------------------------------------------


@dataclass
class Queue:
    """A relay's queue as a test send meets it: the command that puts a message in (and
    its environment), and the follower that reads the relay's log and queue after it.

    A relay hands this out (``relay.queue()``); a mailx or sendmail transport that feeds
    the same relay by its own command calls :meth:`hand_over` with that command.
    """

    mta: str
    # The relay's sendmail and its options, before the envelope (-f sender -- recipient).
    sendmail: list[str]
    # What a program that calls this relay's sendmail needs in its environment.
    env: dict[str, str]
    # The follower of one message; made before the hand-over, so the log offset is "now".
    follower: Callable[[Target], Follower]
    # A failed test message is removed from the queue: otherwise the relay retries it
    # for days and it arrives long after the panel said "failed".
    discard_failed: bool = True

    def sendmail_argv(self, target: Target) -> list[str]:
        return [*self.sendmail, "-i", "-f", target.sender, "--", target.recipient]

    def test_send(self, target: Target, message: bytes, timeout: float | None = None) -> SendResult:
        """Hand ``message`` to the relay's sendmail and follow it until delivered or not."""
        message, message_id = with_message_id(message, target.sender)
        return self.hand_over(
            self.sendmail_argv(target),
            stdin=message,
            env=self.env,
            target=target,
            message_id=message_id,
            timeout=timeout,
        )

    def hand_over(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes,
        env: Mapping[str, str],
        target: Target,
        message_id: str,
        timeout: float | None = None,
    ) -> SendResult:
        """Run ``argv`` (which passes the message to this relay), then follow the message."""
        limit = target.timeout if timeout is None else timeout
        start = time.monotonic()
        tracking = Tracking(message_id=message_id)
        follower = self.follower(target)
        out = run(argv, stdin=stdin, env=env, timeout=limit)
        if out.error or (out.returncode != 0 and not out.timed_out):
            result = failure(out, target, Step.QUEUE)
        else:
            result = self._followed(follower, tracking, out, target, (start, start + limit))
        result.command = result.command or self.mta
        result.duration_s = round(time.monotonic() - start, 3)
        result.transcript = "\n".join(t for t in (out.text, *tracking.lines) if t)
        return redacted(result, target)

    def _followed(
        self,
        follower: Follower,
        tracking: Tracking,
        out: RunOutput,
        target: Target,
        times: tuple[float, float],
    ) -> SendResult:
        """Follow a handed-over message until the end of ``times`` (its monotonic start and
        end); the result it earned. A failed test message and its bounces leave the queue."""
        start, end = times

        def left() -> float:
            return max(0.0, end - time.monotonic())

        # A hand-over stopped at the limit may still have queued the message: look.
        follower.after_hand_over(tracking, left())
        follow(follower, tracking, left())
        if out.timed_out and tracking.state is QueueState.UNSEEN:
            result = failure(out, target, Step.QUEUE)
        else:
            result = result_of(tracking, target, self.mta, time.monotonic() - start)
            result.exit_code = out.returncode
        if not tracking.lines:
            tracking.lines.append(queue_note(tracking, self.mta))
        if not result.ok and self.discard_failed and tracking.ids:
            tracking.lines.append(follower.discard(tracking))
        return result
