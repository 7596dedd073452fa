"""Mail commands that run one of the send scripts shipped in ``transports/scripts``.

The Python and Perl scripts share one interface: options in argv, the
password on the first line of stdin, the message in a 0600 file, the SMTP
dialogue on stderr, and ``XMAILADMIN-RESULT {json}`` as the last stdout line.

With ``--batch`` instead of ``--to``/``--message`` they carry many messages over
one connection: a 0600 manifest names each recipient and message file, stderr
has the line ``XMAILADMIN-ITEM N`` before item N's part of the dialogue, and
stdout one ``XMAILADMIN-RESULT`` line per item, with ``"item": N``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from .base import SENT, SendResult, Step, Target, TargetError, tls_name
from .classify import failed_at, failure, key_line, timed_out_run
from .command import CommandTransport, Invocation
from .detection import Detection, located
from .run import RunOutput, run
from .secrecy import PrivateDir, private_dir
from .tlsinfo import CachedRun, RunFn

SCRIPTS = Path(__file__).resolve().parent / "scripts"
RESULT_PREFIX = "XMAILADMIN-RESULT "
ITEM_MARKER = re.compile(r"^XMAILADMIN-ITEM (\d+)$\n?", re.M)


def _state(line: str) -> dict | None:
    """What a result line says, or None when it is no result line."""
    if not line.startswith(RESULT_PREFIX):
        return None
    try:
        state = json.loads(line[len(RESULT_PREFIX) :])
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def script_result(out: RunOutput) -> dict:
    for line in reversed(out.stdout.splitlines()):
        if (state := _state(line)) is not None:
            return state
    return {}


def item_results(stdout: str) -> dict[int, tuple[str, dict]]:
    """Each item's result line of a batch and what it says, by item number."""
    found: dict[int, tuple[str, dict]] = {}
    for line in stdout.splitlines():
        state = _state(line)
        if state and isinstance(item := state.get("item"), int):
            found.setdefault(item, (line, state))
    return found


def item_parts(stderr: str) -> tuple[str, dict[int, str]]:
    """A batch's stderr cut at the item markers: the connection's part (greeting, TLS,
    EHLO, AUTH) and each item's part, without the marker lines."""
    marks = list(ITEM_MARKER.finditer(stderr))
    shared = stderr[: marks[0].start()] if marks else stderr
    parts: dict[int, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(stderr)
        parts.setdefault(int(mark.group(1)), stderr[mark.end() : end])
    return shared, parts


class ScriptTransport(CommandTransport):
    script: ClassVar[str]
    carries_many = True

    @classmethod
    def detect(cls, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
        """The interpreter, and what :meth:`inspect` learns from it about its TLS."""
        run_fn = run_fn or CachedRun()
        det, exe = located(cls.key, cls.names(), executable, run_fn)
        if exe is not None:
            cls.inspect(det, exe, run_fn)
        return det

    @classmethod
    def inspect(cls, det: Detection, exe: str, run_fn: RunFn) -> None:
        """Version, TLS library and missing parts, as the interpreter itself reports them."""
        raise NotImplementedError

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        return self._invocation(
            exe, target, to=target.recipient, message=tmp.write("message.eml", message)
        )

    def _invocation(self, exe: str, target: Target, **what: str) -> Invocation:
        """The script's argv and stdin; ``what`` is --to and --message, or --batch."""
        # --name=value: a value starting with "-" (a user "--help@x") stays a value.
        options = {
            "host": target.host, "port": str(target.port), "mode": target.mode.value,
            "user": target.user, "password-file": "-", "from": target.sender,
            # The script's own socket timeout fires first and names the step it hung in.
            "timeout": f"{max(1.0, target.timeout - 2):g}",
            "helo": target.helo, **what,
        }  # fmt: skip
        if target.ca_file:
            options["ca-file"] = target.ca_file
        argv = [exe, str(SCRIPTS / self.script), *(f"--{k}={v}" for k, v in options.items())]
        if not target.verify:
            argv.append("--insecure")
        return Invocation(argv, stdin=target.password.encode() + b"\n")

    def outcome(self, out: RunOutput, target: Target) -> SendResult:
        state = script_result(out)
        step = Step(state["step"]) if state.get("step") in Step._value2member_map_ else None
        if out.returncode == 0 and step is Step.DONE:
            result = SendResult(ok=True, step=Step.DONE, reason=SENT, exit_code=0)
        elif step is None or step is Step.DONE:
            result = failure(out, target)
        elif step is Step.TIMEOUT:
            result = timed_out_run(out, target, state.get("waited_for"), state.get("error") or "")
        else:
            detail = state.get("error") or key_line(out.stderr)
            result = failed_at(step, target, detail, exit_code=out.returncode)
        result.tls_version = tls_name(state.get("tls_version"))
        return result

    def send_many(self, target: Target, items: Sequence[tuple[str, bytes]]) -> list[SendResult]:
        """All messages through one run of the script with ``--batch``: one connection."""
        start = time.monotonic()
        per_item = self._per_item(target, items)
        batch = [each for each in per_item if not isinstance(each, SendResult)]
        if not batch:
            return per_item
        exe, problem = self._ready(target)
        if problem is not None:
            sent = [replace(problem) for _ in batch]
        else:
            try:
                sent = self._send_batch(exe, target, batch)
            except TargetError as exc:
                sent = [SendResult(ok=False, step=Step.CONFIG, reason=exc.text) for _ in batch]
        share = (time.monotonic() - start) / len(batch)
        done = iter(
            self._finished(result, one, share) for result, (one, _) in zip(sent, batch, strict=True)
        )
        return [each if isinstance(each, SendResult) else next(done) for each in per_item]

    def _send_batch(
        self, exe: str, target: Target, batch: Sequence[tuple[Target, bytes]]
    ) -> list[SendResult]:
        with private_dir() as tmp:
            manifest = "".join(
                json.dumps({"to": one.recipient, "message": tmp.write(f"{n}.eml", message)}) + "\n"
                for n, (one, message) in enumerate(batch)
            )
            how = self._invocation(exe, target, batch=tmp.write("batch.jsonl", manifest))
            # A silent server meets the script's own timeout on each SMTP read; this limit
            # is for one that answers, but slowly. The connection gets the time of one
            # send, and each message that of a send of its own: a batch is never cut off
            # sooner than the loop of sends it replaces, where a kill in the middle of a
            # message risks sending it twice.
            limit = target.timeout * (len(batch) + 1)
            out = run(how.argv, stdin=how.stdin, timeout=limit, env={"HOME": str(tmp.path)})
        return self.item_outcomes(out, [one for one, _ in batch])

    def item_outcomes(self, out: RunOutput, targets: Sequence[Target]) -> list[SendResult]:
        """Each item's result from its result line and its part of the transcript. An item
        without a result line (the run was killed or broke off) has the result of the
        first such item: the one under way, after which nothing more was sent."""
        found = item_results(out.stdout)
        shared, parts = item_parts(out.stderr)
        under_way = next((n for n in range(len(targets)) if n not in found), None)
        results = []
        for n, one in enumerate(targets):
            judged = n if n in found or under_way is None else under_way
            line, state = found.get(judged, ("", {}))
            item_out = replace(
                out,
                stdout=line,
                stderr=shared + parts.get(judged, ""),
                # An item that went through did so whatever became of the run later.
                returncode=0 if state.get("step") == Step.DONE else out.returncode,
                duration_s=out.duration_s / len(targets),
            )
            result = self.outcome(item_out, one)
            # The connection's part belongs to each item: it shows the TLS and the login
            # this message went through, a few lines next to the message's own dialogue.
            own = found.get(n, ("", {}))[0]
            result.transcript = replace(item_out, stdout=own, stderr=shared + parts.get(n, "")).text
            results.append(result)
        return results
