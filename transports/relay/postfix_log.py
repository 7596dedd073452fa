"""Following a message through postfix: its mail log first, ``postqueue -j`` second.

The log says everything: ``cleanup: QID: message-id=<...>`` ties our Message-ID
to the queue ID, ``smtp: QID: to=<...>, relay=..., status=sent|deferred|bounced
(...)`` is the verdict, and the same smtp process's ``Verified TLS connection
established ... TLSv1.3`` line before it names the TLS. Without a readable log,
``postqueue -j`` still shows a deferred message and its reason, but cannot
prove a delivery.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence

from ..base import Target
from ..run import run
from .follow import LogTail, QueueState, Tracking, discard_note, same_message_id

# "... postfix/smtp[123]: text"; the syslog prefix before it varies, the program may be
# "postfix-out/smtp" (multi-instance) or "postfix/submission/smtpd".
_LINE = re.compile(r"\s(?P<prog>[\w.+-]+(?:/[\w.+-]+)+)\[(?P<pid>\d+)\]: (?P<text>.*)$")
_QID = r"(?P<qid>[0-9A-Za-z]{5,})"
_MESSAGE_ID = re.compile(rf"^{_QID}: message-id=(?P<mid>.*)$")
_STATUS = re.compile(
    rf"^{_QID}: to=<[^>]*>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>[^,]*),"
    r".*? status=(?P<status>\w+) \((?P<text>.*)\)$"
)
_TLS = re.compile(
    r"^(?P<trust>Verified|Trusted|Untrusted|Anonymous) TLS connection established to "
    r"\S+: (?P<proto>\S+) with"
)
_CHILD = re.compile(
    rf"^{_QID}: sender (?:non-delivery|delivery status) notification: (?P<child>\w+)"
)
_REMOVED = re.compile(rf"^{_QID}: removed$")
_EXPIRED = re.compile(rf"^{_QID}: from=<[^>]*>, status=expired")
_STATES = {
    "sent": QueueState.DELIVERED,
    "deferred": QueueState.DEFERRED,
    "bounced": QueueState.BOUNCED,
}

QUEUE_POLL_INTERVAL = 1.0
COMMAND_TIMEOUT = 10.0


class PostfixFollower:
    def __init__(
        self,
        log_path: str | None,
        postqueue: Sequence[str],
        postsuper: Sequence[str],
        target: Target,
        logged_in: Callable[[], bool | None] | None = None,
    ) -> None:
        self._tail = LogTail(log_path)
        # Asked once the message is delivered: postfix's log does not say it logged in.
        self._logged_in = logged_in
        self._postqueue = list(postqueue)
        self._postsuper = list(postsuper)
        self._target = target
        self._tls: dict[str, tuple[str, str]] = {}  # smtp pid -> (trust, protocol)
        self._next_queue_look = 0.0
        # Without a log the message is recognised as the new entry for our envelope.
        self._before = set() if self._tail.usable else set(self._queue())

    # -- the log --

    def poll(self, tracking: Tracking) -> None:
        for line in self._tail.lines():
            self._read(line, tracking)
        if not self._tail.usable and time.monotonic() >= self._next_queue_look:
            self._next_queue_look = time.monotonic() + QUEUE_POLL_INTERVAL
            self._look_in_queue(tracking, final=False)

    def _read(self, line: str, tracking: Tracking) -> None:
        match = _LINE.search(line)
        if not match:
            return
        text, pid = match["text"], match["pid"]
        if tls := _TLS.match(text):
            self._tls[pid] = (tls["trust"], tls["proto"])
            return
        if (m := _MESSAGE_ID.match(text)) and tracking.queue_id is None:
            if same_message_id(m["mid"], tracking.message_id):
                tracking.queue_id, tracking.state = m["qid"], QueueState.QUEUED
                tracking.lines.append(line)
            return
        qid = tracking.queue_id
        if qid is None or not text.startswith(f"{qid}:"):
            return
        tracking.lines.append(line)
        if m := _STATUS.match(text):
            self._verdict(m, pid, tracking)
        elif m := _CHILD.match(text):
            tracking.children.append(m["child"])
        elif _EXPIRED.match(text) and tracking.state is QueueState.QUEUED:
            tracking.state = QueueState.BOUNCED
            tracking.reason = tracking.reason or "expired in the queue"
        elif _REMOVED.match(text) and tracking.state is QueueState.QUEUED:
            tracking.state = QueueState.GONE  # deleted (postsuper -d) without an attempt

    def _verdict(self, m: re.Match[str], pid: str, tracking: Tracking) -> None:
        state = _STATES.get(m["status"], QueueState.BOUNCED)  # "expired" and the like
        tracking.state, tracking.reason, tracking.remote = state, m["text"], m["relay"]
        if state is QueueState.DELIVERED and pid in self._tls:
            trust, proto = self._tls[pid]
            tracking.tls_version, tracking.tls_verified = proto, trust == "Verified"
        if state is QueueState.DELIVERED and self._logged_in is not None:
            tracking.authenticated = self._logged_in()

    # -- the queue --

    def _queue(self) -> dict[str, dict]:
        out = run([*self._postqueue, "-j"], timeout=COMMAND_TIMEOUT)
        entries = {}
        for line in out.stdout.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            entries[entry.get("queue_id", "")] = entry
        return entries

    def _look_in_queue(self, tracking: Tracking, *, final: bool) -> None:
        queue = self._queue()
        if tracking.queue_id is None:
            tracking.queue_id = self._newest_of_ours(queue)
        entry = queue.get(tracking.queue_id or "")
        if entry is None:
            if tracking.state is QueueState.QUEUED and not self._tail.usable:
                tracking.state = QueueState.GONE
            return
        tracking.state = (
            QueueState.QUEUED if tracking.state is QueueState.UNSEEN else tracking.state
        )
        tracking.queue_name = entry.get("queue_name", "")
        reasons = [r.get("delay_reason", "") for r in entry.get("recipients", [])]
        tracking.reason = next((r for r in reasons if r), tracking.reason)
        # Without a log, a reason in the deferred queue is the verdict of an attempt.
        if not final and tracking.queue_name == "deferred" and tracking.reason:
            tracking.state = QueueState.DEFERRED

    def _newest_of_ours(self, queue: dict[str, dict]) -> str | None:
        ours = [
            e
            for qid, e in queue.items()
            if qid not in self._before
            and e.get("sender") == self._target.sender
            and any(r.get("address") == self._target.recipient for r in e.get("recipients", []))
        ]
        ours.sort(key=lambda e: e.get("arrival_time", 0))
        return ours[-1]["queue_id"] if ours else None

    def after_hand_over(self, tracking: Tracking, timeout: float) -> None:
        pass  # postfix's own pickup and qmgr take it from the maildrop

    def last_look(self, tracking: Tracking) -> None:
        self._look_in_queue(tracking, final=True)

    def discard(self, tracking: Tracking) -> str:
        argv = [*self._postsuper]
        for qid in tracking.ids:
            argv += ["-d", qid]
        out = run(argv, timeout=COMMAND_TIMEOUT)
        return discard_note(out, tracking.ids)
