"""The scheduled health check: does mail still leave through the first command?

Every ``XMAILADMIN_HEALTH_INTERVAL`` seconds beat starts ``tasks.scheduled_health``,
which queues one check per server whose worker is alive, on that server's queue
(``start``): a test mail of the default account through the first enabled command of
the order that the last probe found, kept as a TestSend of trigger "scheduled" (so it
is in the history, the dashboard's row and its chart like any test).

``after_check`` then moves the server's HealthState:

- a failure starts an outage (``failing_since``) and mails an alert to the admin
  address (the outbox page sets it) through the next enabled commands, in order, until
  one takes it; which one did, or why none could, is recorded and shown. While the
  outage lasts, no more alerts, except a reminder once per ``XMAILADMIN_HEALTH_REMIND``;
  an alert that could not be sent is tried again at the next check.
- the first pass after an outage mails that mail works again (through the order,
  starting with the command that just passed) and ends the outage.

Each alert and recovery is in the audit log, also when no admin address is set.
"""

from __future__ import annotations

import logging
import socket
import time
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from outbox import spool
from transports.base import TargetError
from transports.catalogue import BY_KEY
from transports.texts import Text, gettext_noop

from . import delivery, jobs, order, relay_settings
from .crypto import PasswordUnreadable
from .models import (
    Account,
    AuditEntry,
    HealthState,
    ProbeRun,
    Server,
    State,
    TestSend,
    Trigger,
    WorkerHeartbeat,
)
from .templatetags.panel import step_label
from .texts import moment, say

log = logging.getLogger(__name__)

TASK = "xmailadmin.tasks.scheduled_check"
# The alert's own attempts stop starting new commands after this many seconds, within
# the task's time limit (tasks.scheduled_check).
ALERT_BUDGET_S = 300

SENT = gettext_noop("mailed to %(admin)s through %(command)s")
NOT_SENT = gettext_noop("could not be mailed to %(admin)s: %(reason)s")
NO_ADMIN = gettext_noop("no admin address is set (outbox page): nobody was mailed")
NO_WAY = gettext_noop("no other mail command is enabled to mail it")
TRIED = gettext_noop("last tried %(command)s: %(reason)s")


def start(server: Server) -> TestSend | None:
    """Queue the check of ``server``; None when there is nothing to check with (no
    account, no command enabled) or a check of that command still runs."""
    account = Account.default(server)
    key = first_command(server)
    if account is None or key is None:
        return None
    try:
        with transaction.atomic():
            row = TestSend.objects.create(
                server=server, account=account, account_name=account.name, command=key,
                recipient=account.recipient, trigger=Trigger.SCHEDULED,
                language=settings.LANGUAGE_CODE,
            )  # fmt: skip
    except IntegrityError:  # a test of that command is queued or running: it tells
        return None
    jobs.publish(row, TASK, send_id=row.id)
    return row


def start_all() -> list[TestSend]:
    """One check per server whose worker is alive (an offline server's check would only
    wait: the fleet shows it offline instead)."""
    alive = WorkerHeartbeat.objects.filter(seen_at__gte=WorkerHeartbeat.fresh_since())
    servers = Server.objects.filter(pk__in=alive.values("server"))
    return [row for server in servers if (row := start(server)) is not None]


def first_command(server: Server | None = None) -> str | None:
    """The first enabled command of ``server`` the last probe found (the first enabled
    one before any probe): the one applications' mail goes through."""
    keys = order.enabled_keys(server)
    probe = ProbeRun.latest_finished(server)
    if probe is None:
        return keys[0] if keys else None
    found = set(probe.results.filter(found=True).values_list("key", flat=True))
    return next((key for key in keys if key in found), None)


def state_of(server: Server | None = None) -> HealthState | None:
    return HealthState.objects.filter(server=server or Server.local()).first()


# --- after a check ----------------------------------------------------------------------


def after_check(row: TestSend) -> HealthState:
    """Move the server's state by the check ``row`` (final), alerting as the module says.
    No lock is held while mailing: one check per server runs at a time (``start``)."""
    state, _created = HealthState.objects.get_or_create(server=row.server)
    state.last_check = row
    now = timezone.now()
    if row.state in (State.PASSED, State.WARNING):
        if state.failing_since is not None:
            _recovered(state, row)
            state.failing_since, state.alerted_at, state.recovered_at = None, None, now
    elif row.state in (State.FAILED, State.NOT_INSTALLED):
        if state.failing_since is None:
            state.failing_since, state.alerted_at = row.created_at, None
        since = (now - state.alerted_at).total_seconds() if state.alerted_at else None
        due = since is None or since >= settings.XMAILADMIN_HEALTH_REMIND
        if due and _alerted(state, row):
            state.alerted_at = now
    state.save()
    return state


def _alerted(state: HealthState, row: TestSend) -> bool:
    keys = [k for k in order.enabled_keys() if k != row.command]
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Mail sending fails on %(server)s") % {"server": row.server.name}
        lines = [
            _("The scheduled check at %(time)s sent a test mail through %(command)s, the "
              "first command of the order, to %(recipient)s. It failed at step "
              "“%(step)s”: %(reason)s")
            % {"time": moment(row.created_at), "command": row.command_label,
               "recipient": row.recipient, "step": step_label(row.step),
               "reason": row.explanation},
            "",
            _("Failing since: %(time)s") % {"time": moment(state.failing_since)},
        ]  # fmt: skip
        if row.suggestion:
            lines.append(_("What to do: %(fix)s") % {"fix": row.suggestion})
        lines += ["", _("The transcript is on the panel's overview, in the row of "
                        "%(command)s.") % {"command": row.command_label}]  # fmt: skip
    return _mailed(state, row, subject, lines, keys, AuditEntry.Action.HEALTH_ALERT)


def _recovered(state: HealthState, row: TestSend) -> bool:
    keys = [row.command, *(k for k in order.enabled_keys() if k != row.command)]
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Mail sending works again on %(server)s") % {"server": row.server.name}
        lines = [
            _("The scheduled check at %(time)s passed through %(command)s.")
            % {"time": moment(row.created_at), "command": row.command_label},
            _("It had failed since %(time)s.") % {"time": moment(state.failing_since)},
        ]
    return _mailed(state, row, subject, lines, keys, AuditEntry.Action.HEALTH_RECOVERED)


def _mailed(state, row, subject: str, lines: list[str], keys: list[str], action) -> bool:
    """Mail the admin address through ``keys`` in order; record and audit how it went."""
    admin = spool.admin_address(delivery.root())
    if not admin:
        text, ok = Text(NO_ADMIN), False
    else:
        text, ok = _send(row, admin, _message(row, admin, subject, lines), keys)
    state.alert_text, state.alert_ok = text.to_dict(), ok
    with translation.override("en"):  # the audit log's details are English data
        AuditEntry.record(None, action, target=row.server.name,
                          detail=f"{row.command}: {say(text.to_dict())}")  # fmt: skip
    return ok


def _send(row: TestSend, admin: str, message: bytes, keys: list[str]) -> tuple[Text, bool]:
    if not keys:
        return Text(NOT_SENT, {"admin": admin, "reason": Text(NO_WAY)}), False
    try:
        target = row.account.target(row.account.decrypt_password(), admin)
    except (PasswordUnreadable, TargetError) as exc:
        reason = getattr(exc, "text", None) or str(exc)
        return Text(NOT_SENT, {"admin": admin, "reason": reason}), False
    started, tried = time.monotonic(), []
    for key in keys:
        if time.monotonic() - started > ALERT_BUDGET_S:
            break
        result = relay_settings.transport_for(key).send(target, message)
        if result.ok:
            return Text(SENT, {"admin": admin, "command": BY_KEY[key].label}), True
        tried.append(Text(TRIED, {"command": BY_KEY[key].label, "reason": result.reason}))
        log.warning("health alert through %s failed: %s", key, result.reason)
        if result.permanent:  # the server refused the message itself: all would hear so
            break
    return Text(NOT_SENT, {"admin": admin, "reason": tried[-1]}), False


def _message(row: TestSend, admin: str, subject: str, lines: list[str]) -> bytes:
    sender = row.account.sender
    message = EmailMessage()
    message["From"] = f"xmailadmin <{sender}>"
    message["To"] = admin
    message["Subject"] = subject
    message["Date"] = format_datetime(localtime())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or socket.getfqdn())
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-reply to this
    message.set_content("\n".join(lines))
    return message.as_bytes()
