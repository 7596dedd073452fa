"""The overview's status line: in one sentence, whether mail sending works and through
which command, or what is wrong.

Made from what the overview shows already: the enabled commands in the preferred order
(each with its last probe result and its latest test send for the account). Nothing
sends with a fallback yet, so the line says what the tests showed, not what a mail
sent now would do. Computed when the page is rendered, in its reader's language.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import Account, ProbeResult, State, TestSend
from .texts import say

PASSING = (State.PASSED, State.WARNING)
REASON_CHARS = 160


class Row(Protocol):
    """A row of the overview (views/dashboard.py CommandRow)."""

    number: int | None  # place among the enabled commands; None when switched off
    probe: ProbeResult | None
    send: TestSend | None

    @property
    def entry(self): ...


@dataclass(frozen=True)
class StatusLine:
    level: str  # the colour: pass, partly, fail, unknown, running
    headline: str
    details: list[str] = field(default_factory=list)


def _label(row: Row) -> str:
    return say(row.entry.label)


def _installed(row: Row) -> bool:
    if row.send is not None and row.send.state == State.NOT_INSTALLED:
        return False
    return row.probe is None or row.probe.found


def _reason(send: TestSend) -> str:
    return Truncator(send.explanation or _("no reason given")).chars(REASON_CHARS)


def status_line(account: Account | None, rows: Sequence[Row]) -> StatusLine:
    """What works and what does not, from the rows in the order of use."""
    if account is None:
        return StatusLine("unknown", _("No SMTP account yet: add one, then test the commands."))
    enabled = [r for r in rows if r.number is not None]
    if not enabled:
        return StatusLine("fail", _("No command is enabled: see Order."))
    running = [r for r in enabled if r.send is not None and r.send.active]
    if running:
        done = sum(1 for r in enabled if r.send is not None and not r.send.active)
        return StatusLine(
            "running",
            ngettext(
                "Test running: %(n)d command still to answer.",
                "Test running: %(n)d commands still to answer.",
                len(running),
            )
            % {"n": len(running)},
            [_("%(done)d of %(all)d have a result.") % {"done": done, "all": len(enabled)}],
        )
    installed = [r for r in enabled if _installed(r)]
    tested = [r for r in installed if r.send is not None]
    if not tested:
        if not installed:
            return StatusLine("fail", _("None of the enabled commands is installed."))
        return StatusLine(
            "unknown",
            _("Not tested yet: “Test all” sends a test mail through each enabled command."),
        )
    return _verdict(account, enabled, installed, tested)


def _verdict(account: Account, enabled: list, installed: list, tested: list) -> StatusLine:
    passing = [r for r in tested if r.send.state in PASSING]
    details = _counts(enabled, installed, tested, passing)
    failed = [r for r in tested if r.send.state not in PASSING]
    if not passing:
        return StatusLine("fail", _no_command_passes(account, failed), details[1:])
    first, through = enabled[0], passing[0]
    if first is through:
        headline = _("Mail sending works through the first in the order, %(command)s.") % {
            "command": _label(first)
        }
        return StatusLine("pass" if len(passing) == len(enabled) else "partly", headline, details)
    headline = _("In the tests, mail went through number %(n)d in the order: %(good)s.") % {
        "good": _label(through),
        "n": through.number,
    }
    return StatusLine("partly", f"{_first_problem(first)} {headline}", details)


def _counts(enabled: list, installed: list, tested: list, passing: list) -> list[str]:
    counts = [
        ngettext(
            "%(n)d of %(all)d command passes.", "%(n)d of %(all)d commands pass.", len(enabled)
        )
        % {"n": len(passing), "all": len(enabled)}
    ]
    if missing := len(enabled) - len(installed):
        counts.append(
            ngettext("%(n)d is not installed.", "%(n)d are not installed.", missing)
            % {"n": missing}
        )
    if untested := len(installed) - len(tested):
        counts.append(
            ngettext("%(n)d is not tested yet.", "%(n)d are not tested yet.", untested)
            % {"n": untested}
        )
    return counts


def _first_problem(first: Row) -> str:
    """Why the first in the order did not carry the test mail."""
    name = {"command": _label(first)}
    if not _installed(first):
        return _("The first in the order, %(command)s, is not installed.") % name
    if first.send is None:
        return _("The first in the order, %(command)s, is not tested yet.") % name
    return _("The first in the order, %(command)s, fails: %(reason)s.") % {
        **name,
        "reason": _reason(first.send).rstrip("."),
    }


def _no_command_passes(account: Account, failed: list) -> str:
    """All tested commands fail: the most common way, with the usual cause of a timeout."""
    ways = Counter(r.send.reason_code or r.send.step for r in failed)
    way, count = ways.most_common(1)[0]
    example = next(r.send for r in failed if (r.send.reason_code or r.send.step) == way)
    text = _("No command passes (%(n)d tested); most often (%(count)d): %(reason)s.") % {
        "n": len(failed),
        "count": count,
        "reason": _reason(example).rstrip("."),
    }
    if example.step == "timeout" and count > 1:
        text += " " + _(
            "Many timeouts usually mean the wrong encryption for the port "
            "(port %(port)s: %(mode)s is set)."
        ) % {"port": account.port, "mode": account.get_effective_mode_display()}
    return text
