"""Pass and fail over time as a small inline SVG, drawn on the server (no script, no CDN).

One bar per test, oldest left: green passed, amber passed with a note, red failed, grey
not installed; a scheduled check's bar is shorter, with a dot beneath it. Each
bar has its own tooltip (``<title>``: when, how, by whom), and the whole chart a label
that says the numbers in words, so colour is never the only sign.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from .models import ACTIVE_STATES, STATE_CSS, State, TestSend, Trigger
from .texts import moment

POINTS = 20  # bars per chart
BAR, GAP, HEIGHT = 6, 2, 16


@dataclass(frozen=True)
class Point:
    state: str
    at: datetime | None
    scheduled: bool


def history(
    account, keys: list[str] | None = None, points: int = POINTS, server=None
) -> dict[str, list]:
    """The last ``points`` final tests per command (of ``account``; of all accounts when
    None; of ``server`` when given), oldest first: one query, numbered per command by the
    database."""
    rows = TestSend.objects.exclude(state__in=ACTIVE_STATES)
    if server is not None:
        rows = rows.filter(server=server)
    if account is not None:
        rows = rows.filter(account=account)
    if keys is not None:
        rows = rows.filter(command__in=keys)
    numbered = rows.annotate(
        n=Window(RowNumber(), partition_by=[F("command")], order_by=F("id").desc())
    ).filter(n__lte=points)
    found: dict[str, list[Point]] = defaultdict(list)
    for command, state, at, trigger in numbered.values_list(
        "command", "state", "finished_at", "trigger"
    ).order_by("id"):
        found[command].append(Point(state, at, trigger == Trigger.SCHEDULED))
    return found


def svg(points: list[Point], label: str) -> SafeString:
    """The chart of ``points``; "" when there is nothing to draw."""
    if not points:
        return SafeString("")
    passed = sum(p.state in (State.PASSED, State.WARNING) for p in points)
    words = _("%(label)s: %(passed)d of %(n)d tests passed") % {
        "label": label, "passed": passed, "n": len(points)}  # fmt: skip
    width = len(points) * (BAR + GAP)
    bars = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{}</title></rect>{}',
        ((i * (BAR + GAP), 0, BAR, HEIGHT - 4 if p.scheduled else HEIGHT,
          STATE_CSS.get(p.state, "unknown"), _tooltip(p),
          format_html('<circle cx="{}" cy="{}" r="1.5" class="{}"></circle>',
                      i * (BAR + GAP) + BAR / 2, HEIGHT - 1, STATE_CSS.get(p.state, "unknown"))
          if p.scheduled else "")
         for i, p in enumerate(points)),
    )  # fmt: skip
    return format_html(
        '<svg class="chart" role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}"'
        ' xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        words, width, HEIGHT, width, HEIGHT, words, bars,
    )  # fmt: skip


def _tooltip(point: Point) -> str:
    when = moment(point.at) if point.at is not None else "?"
    state = State(point.state).label if point.state in State.values else point.state
    how = _("scheduled check") if point.scheduled else _("test")
    return f"{when} · {how}: {state}"
