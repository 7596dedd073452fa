"""Following a message through exim: its main log first, the queue (``-bpr``/``-Mvh``) second.

The main log tells the whole story by message ID: ``<= sender ... id=<Message-ID>``
on arrival, then ``=>`` delivered (with ``X=TLS1.3:...`` and ``CV=yes``), ``==``
deferred, ``**`` bounced. An authenticator's complaint ("plain authenticator
failed ... 535") comes on a line of its own before the verdict. Exim exits 0 in
every one of these cases.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from ..run import run
from .follow import LogTail, QueueState, Tracking, discard_note, same_message_id

# "2026-11-28 07:28:18 1xXCr4-0003Aw-2w text"; 4.97+ IDs are longer (6-11-4), a log
# selector may add a time zone or "[pid]".
_EXIM_ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}"
_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [-+]\d{4})?(?: \[\d+\])? "
    rf"(?P<id>{_EXIM_ID}) (?P<text>.*)$"
)
_ARRIVAL = re.compile(r"^<= (?P<sender>\S+) .*?\bid=(?P<mid>\S+)")
_BOUNCE_ARRIVAL = re.compile(rf"^<= <> R=(?P<parent>{_EXIM_ID})")
# key=value fields (values quoted or bare) and "[address]" parts between the recipient
# and the reason.
_FIELD = r'(?:[A-Za-z]+=(?:"(?:[^"\\]|\\.)*"|\S*[^\s:])|\[[^\]]*\](?::\d+)?)'
_OUTCOME = re.compile(
    rf"^(?P<mark>=>|->|\*>|==|\*\*) (?P<rcpt>\S+)(?: <[^>]*>)?(?: {_FIELD})*[: ]\s*(?P<rest>.*)$"
)
_HOST = re.compile(r"\bH=(?P<host>\S+(?: \[[^\]]+\](?::\d+)?)?)")
_TLS = re.compile(r"\bX=(?P<proto>[A-Za-z0-9.]+):")
_VERIFIED = re.compile(r"\bCV=(?P<cv>\w+)")
# The client authenticator a delivery logged in with ("A=plain", with client_set_id
# "A=plain:user"); exim writes it on every delivery that authenticated.
_AUTHENTICATOR = re.compile(r"\bA=\S+")
_CONFIRMATION = re.compile(r'\bC="(?P<reply>(?:[^"\\]|\\.)*)"')
_MARKS = {
    "=>": QueueState.DELIVERED,
    "->": QueueState.DELIVERED,
    "*>": QueueState.DELIVERED,
    "==": QueueState.DEFERRED,
    "**": QueueState.BOUNCED,
}

QUEUE_POLL_INTERVAL = 1.0
COMMAND_TIMEOUT = 10.0


class EximFollower:
    def __init__(
        self, log_path: str | None, exim: Sequence[str], delivery: Sequence[str] = ()
    ) -> None:
        """``exim``: the command with its configuration; ``delivery``: the options of the
        delivery it starts (exim passes a -D macro on to the bounce it makes)."""
        self._tail = LogTail(log_path)
        self._exim = list(exim)
        self._delivery = list(delivery)
        self._next_queue_look = 0.0

    def poll(self, tracking: Tracking) -> None:
        for line in self._tail.lines():
            self._read(line, tracking)
        if not self._tail.usable and time.monotonic() >= self._next_queue_look:
            self._next_queue_look = time.monotonic() + QUEUE_POLL_INTERVAL
            self._look_in_queue(tracking)

    def _read(self, line: str, tracking: Tracking) -> None:
        match = _LINE.match(line)
        if not match:
            return
        exim_id, text = match["id"], match["text"]
        if tracking.queue_id is None:
            arrival = _ARRIVAL.match(text)
            if arrival and same_message_id(arrival["mid"], tracking.message_id):
                tracking.queue_id, tracking.state = exim_id, QueueState.QUEUED
                tracking.lines.append(line)
            return
        if (bounce := _BOUNCE_ARRIVAL.match(text)) and bounce["parent"] == tracking.queue_id:
            tracking.children.append(exim_id)
            return
        if exim_id != tracking.queue_id:
            return
        tracking.lines.append(line)
        if " authenticator failed " in f" {text} ":
            tracking.auth_failure = text
        elif outcome := _OUTCOME.match(text):
            self._verdict(outcome, text, tracking)
        elif text.startswith("Frozen") and tracking.state is QueueState.QUEUED:
            tracking.state = QueueState.DEFERRED  # frozen: exim will not try again by itself
            tracking.reason = tracking.reason or text
        elif text.startswith("Completed") and tracking.state is QueueState.QUEUED:
            tracking.state = QueueState.GONE

    def _verdict(self, outcome: re.Match[str], text: str, tracking: Tracking) -> None:
        state = _MARKS[outcome["mark"]]
        if state is QueueState.DELIVERED and tracking.state is QueueState.DELIVERED:
            return  # a second address of the same message
        tracking.state = state
        if host := _HOST.search(text):
            tracking.remote = host["host"]
        if state is QueueState.DELIVERED:
            reply = _CONFIRMATION.search(text)
            tracking.reason = reply["reply"] if reply else "accepted"
            if tls := _TLS.search(text):
                tracking.tls_version = tls["proto"]
            cv = _VERIFIED.search(text)
            tracking.tls_verified = bool(cv and cv["cv"] == "yes")
            tracking.authenticated = _AUTHENTICATOR.search(text) is not None
        else:
            tracking.reason = outcome["rest"] or text

    # -- the queue, when the main log cannot be read --

    def _ask(self, *args: str) -> str:
        return run([*self._exim, *args], timeout=COMMAND_TIMEOUT).stdout

    def _queued_ids(self) -> list[str]:
        return re.findall(rf"^\s*\S+\s+\S+\s+({_EXIM_ID})\b", self._ask("-bpr"), re.MULTILINE)

    def _look_in_queue(self, tracking: Tracking) -> None:
        queued = self._queued_ids()
        if tracking.queue_id is None:
            for exim_id in queued:
                headers = self._ask("-Mvh", exim_id)
                found = re.search(r"Message-ID:\s*(\S+)", headers, re.IGNORECASE)
                if found and same_message_id(found.group(1), tracking.message_id):
                    tracking.queue_id, tracking.state = exim_id, QueueState.QUEUED
                    break
        elif tracking.queue_id not in queued and tracking.state is QueueState.QUEUED:
            tracking.state = QueueState.GONE

    def after_hand_over(self, tracking: Tracking, timeout: float) -> None:
        # Deliver now, in the foreground and within the limit: queued with -odq, or left
        # by a background delivery (a mailx cannot pass -odq) that ended with the caller's
        # process group as it started. One that is running holds a lock: -M then returns.
        self.poll(tracking)
        if tracking.queue_id and tracking.state is QueueState.QUEUED and timeout > 0:
            run([*self._exim, *self._delivery, "-M", tracking.queue_id], timeout=timeout)

    def last_look(self, tracking: Tracking) -> None:
        if tracking.queue_id and not tracking.reason:
            # The message's own log holds the attempts so far.
            said = [ln for ln in self._ask("-Mvl", tracking.queue_id).splitlines() if ln.strip()]
            tracking.reason = said[-1] if said else ""

    def discard(self, tracking: Tracking) -> str:
        out = run([*self._exim, "-Mrm", *tracking.ids], timeout=COMMAND_TIMEOUT)
        return discard_note(out, tracking.ids)
