"""What the views (and beat) ask for: create the rows, enqueue the tasks, end stale rows.

Views validate input and call these; they never run a mail command. Tasks
run the commands and write the outcome into the rows created here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from transports.catalogue import BY_KEY, CATALOGUE

from . import health
from .models import (
    ACTIVE_STATES,
    Account,
    AuditEntry,
    ProbeRun,
    RelayCheck,
    State,
    TestSend,
    TransportSetting,
    Trigger,
    WorkerHeartbeat,
    real_user,
)

log = logging.getLogger(__name__)


class NotAccepted(Exception):
    """The request cannot be queued now; the message says why and what to do."""


def ensure_worker() -> None:
    """Refuse early when no task could run, instead of letting the page wait forever."""
    problem = health.current().problem
    if problem:
        raise NotAccepted(problem)


def _publish(task, **kwargs) -> None:
    try:
        task.apply_async(kwargs=kwargs)
    except Exception as exc:  # kombu raises several kinds for a dead broker
        health.forget_broker_state()
        log.warning("could not enqueue %s: %s", task.name, exc)
        raise NotAccepted(
            _("The broker did not accept the job: %(error)s") % {"error": exc}
        ) from exc


def _publish_for(row: ProbeRun | RelayCheck, task, **kwargs) -> None:
    """Enqueue the task of a new row; a broker that refuses it fails the row."""
    try:
        _publish(task, **kwargs)
    except NotAccepted as exc:
        fail(row, str(exc), step="queue")
        raise


# --- probes -----------------------------------------------------------------


def start_probe(user, trigger: str = Trigger.MANUAL) -> ProbeRun:
    """Queue a probe of all mail commands; a probe already queued or running is reused."""
    from .tasks import probe_all  # here: tasks imports this module

    expire_stale()
    with transaction.atomic():
        active = ProbeRun.objects.select_for_update().filter(state__in=ACTIVE_STATES).first()
        if active is not None:
            return active
        run = ProbeRun.objects.create(trigger=trigger, requested_by=real_user(user))
    AuditEntry.record(user, AuditEntry.Action.PROBE_STARTED, target=_("all commands"))
    _publish_for(run, probe_all, run_id=run.id)
    return run


# --- test sends -------------------------------------------------------------


def enabled_keys() -> list[str]:
    return [s.key for s in TransportSetting.ordered() if s.enabled]


def start_tests(account: Account, keys: Sequence[str], user) -> list[TestSend]:
    """One TestSend row per command, each its own task; the tasks run in parallel.

    A command that already has a queued or running test for this account
    keeps that row: a second click never sends a second mail at once.
    """
    from .tasks import send_test  # here: tasks imports this module

    expire_stale()
    batch = uuid.uuid4() if len(keys) > 1 else None
    language = translation.get_language() or settings.LANGUAGE_CODE
    rows: list[TestSend] = []
    new: list[TestSend] = []
    for key in keys:
        if key not in BY_KEY:
            continue
        try:
            with transaction.atomic():
                send = TestSend.objects.create(
                    account=account,
                    account_name=account.name,
                    command=key,
                    recipient=account.recipient,
                    batch=batch,
                    language=language[:8],
                    requested_by=real_user(user),
                )
            new.append(send)
        except IntegrityError:  # already queued or running: keep that one
            send = TestSend.objects.filter(
                account=account, command=key, state__in=ACTIVE_STATES
            ).first()
            if send is None:  # it finished in the meantime; the user can click again
                continue
        rows.append(send)
    if new:
        AuditEntry.record(
            user,
            AuditEntry.Action.TEST_SENT,
            target=account.name,
            detail=", ".join(s.command for s in new) + f" → {account.recipient}",
        )
    for i, send in enumerate(new):
        try:
            _publish(send_test, send_id=send.id)
        except NotAccepted as exc:
            for unsent in new[i:]:
                fail(unsent, str(exc), step="queue")
            raise
    return rows


# --- relays -----------------------------------------------------------------------


def start_relay_check(mta: str, account: Account, user) -> RelayCheck:
    """Queue a look at the relay for ``account``; a job already queued or running for
    this relay is returned instead (a check must not read files an apply is writing)."""
    from .tasks import relay_check  # here: tasks imports this module

    job = RelayCheck(mta=mta, kind=RelayCheck.Kind.CHECK)
    row = _start_relay_job(
        relay_check, job, account, user, AuditEntry.Action.RELAY_CHECK, detail=account.name
    )
    if row.pk != job.pk and (row.kind != job.kind or row.account_id != account.pk):
        raise _busy(mta)
    return row


def _busy(mta: str) -> NotAccepted:
    return NotAccepted(
        _("Another job on %(mta)s is still running; try again when it has finished.")
        % {"mta": mta}
    )


def start_relay_apply(confirmed: RelayCheck, user) -> RelayCheck:
    """Queue the write of the configuration the administrator saw in ``confirmed``."""
    from .tasks import relay_apply  # here: tasks imports this module

    account = confirmed.account
    if account is None:
        raise NotAccepted(_("The account was deleted."))
    files = [confirmed.config.get("settings_path", "")]
    files += [f["path"] for f in confirmed.config.get("files", [])]
    job = RelayCheck(mta=confirmed.mta, kind=RelayCheck.Kind.APPLY, confirmed=confirmed)
    row = _start_relay_job(
        relay_apply,
        job,
        account,
        user,
        AuditEntry.Action.RELAY_APPLY,
        detail=f"{account.name}: " + ", ".join(f for f in files if f),
    )
    if row.pk != job.pk:
        raise _busy(confirmed.mta)
    return row


def _start_relay_job(task, job: RelayCheck, account: Account, user, action, detail) -> RelayCheck:
    expire_stale()
    job.account = account
    job.account_name = account.name
    job.requested_by = real_user(user)
    job.language = (translation.get_language() or settings.LANGUAGE_CODE)[:8]
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError:  # a job on this relay is queued or running: show that one
        active = RelayCheck.objects.filter(mta=job.mta, state__in=ACTIVE_STATES).first()
        if active is not None:
            return active
        raise NotAccepted(_("Please try again.")) from None
    AuditEntry.record(user, action, target=job.mta, detail=detail)
    _publish_for(job, task, check_id=job.id)
    return job


# --- final states -------------------------------------------------------------


def finish(row: TestSend | ProbeRun | RelayCheck, *, state: str, **fields) -> bool:
    """Move an active row to a final state; False if it was already final."""
    fields.update(state=state, finished_at=timezone.now())
    updated = type(row).objects.filter(pk=row.pk, state__in=ACTIVE_STATES).update(**fields)
    if updated:
        for name, value in fields.items():
            setattr(row, name, value)
    return bool(updated)


def fail(row: TestSend | ProbeRun | RelayCheck, reason: str, *, step: str) -> bool:
    """Move an active row to failed: a test send keeps ``reason`` as the reason it failed
    at ``step``, the other rows as their error. False if the row was already final."""
    if isinstance(row, TestSend):
        return finish(row, state=State.FAILED, step=step, reason=reason)
    return finish(row, state=State.FAILED, error=reason)


def expire_stale() -> int:
    """Mark rows failed that no worker will ever finish; returns how many.

    A running row whose worker stopped sending heartbeats, a running row past
    the hard time limit, and a queued row nobody picked up within that limit.
    """
    now = timezone.now()
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 15)
    alive: set[str] | None = None
    count = 0
    for model in (TestSend, ProbeRun, RelayCheck):
        for row in model.objects.filter(state__in=ACTIVE_STATES):
            if alive is None:
                alive = set(
                    WorkerHeartbeat.objects.filter(
                        seen_at__gte=WorkerHeartbeat.fresh_since()
                    ).values_list("hostname", flat=True)
                )
            reason = _stale_reason(row, now, limit, alive)
            if reason is None:
                continue
            count += fail(row, reason, step="timeout")
    return count


def _stale_reason(row, now, limit: timedelta, alive: set[str]) -> str | None:
    language = getattr(row, "language", None) or settings.LANGUAGE_CODE
    seconds = int(limit.total_seconds())
    with translation.override(language):
        if row.state == State.RUNNING:
            started = row.started_at or row.created_at
            beats = timedelta(seconds=3 * settings.XMAILADMIN_HEARTBEAT_SECONDS)
            if row.worker and row.worker not in alive and started < now - beats:
                return _(
                    "Worker %(worker)s stopped while the job ran (no more heartbeats). Please"
                    " start it again."
                ) % {"worker": row.worker}
            if started < now - limit:
                return _(
                    "No result within the time limit of %(s)d s; the worker was probably "
                    "stopped."
                ) % {"s": seconds}
        elif row.created_at < now - limit:
            return _(
                "No worker took the job within %(s)d s. Is the worker running?"
            ) % {"s": seconds}
    return None


def fail_rows_of_worker(hostname: str) -> int:
    """A worker (re)starting under this name: whatever it was running is lost."""
    count = 0
    for model in (TestSend, ProbeRun, RelayCheck):
        for row in model.objects.filter(state=State.RUNNING, worker=hostname):
            language = getattr(row, "language", None) or settings.LANGUAGE_CODE
            with translation.override(language):
                reason = _(
                    "Worker %(worker)s was restarted while the job ran."
                ) % {"worker": hostname}
            count += fail(row, reason, step="timeout")
    return count


# --- preferred order ----------------------------------------------------------


@dataclass(frozen=True)
class OrderProposal:
    order: list[str]  # every catalogue key, first = used first
    enabled: frozenset[str]

    @property
    def first_used(self) -> str | None:
        return next((k for k in self.order if k in self.enabled), None)


def current_order() -> OrderProposal:
    rows = TransportSetting.ordered()
    return OrderProposal([r.key for r in rows], frozenset(r.key for r in rows if r.enabled))


def proposal_from(order: Iterable[str], enabled: Iterable[str]) -> OrderProposal | None:
    """Validate posted keys: a permutation of the catalogue, or None."""
    order = list(order)
    if sorted(order) != sorted(BY_KEY):
        return None
    enabled_set = frozenset(enabled)
    if not enabled_set <= set(BY_KEY):
        return None
    return OrderProposal(order, enabled_set)


def moved(proposal: OrderProposal, key: str, step: int) -> OrderProposal:
    order = list(proposal.order)
    i = order.index(key)
    j = max(0, min(len(order) - 1, i + step))
    order.insert(j, order.pop(i))
    return OrderProposal(order, proposal.enabled)


def toggled(proposal: OrderProposal, key: str) -> OrderProposal:
    return OrderProposal(proposal.order, proposal.enabled ^ {key})


def vendor_recommendation() -> OrderProposal:
    """The vendor's order, enabled: the suitable commands the last probe found."""
    order = [e.key for e in CATALOGUE]
    run = ProbeRun.latest_finished()
    found = None if run is None else {r.key for r in run.results.all() if r.found}
    enabled = frozenset(
        e.key for e in CATALOGUE if not e.unsuitable and (found is None or e.key in found)
    )
    return OrderProposal(order, enabled)


def needs_confirmation(old: OrderProposal, new: OrderProposal) -> str | None:
    """The key of an unsuitable command that the change would make first, if any."""
    first = new.first_used
    if first and BY_KEY[first].unsuitable and first != old.first_used:
        return first
    return None


def save_order(proposal: OrderProposal) -> None:
    now = timezone.now()
    with transaction.atomic():
        rows = {r.key: r for r in TransportSetting.ordered()}
        for position, key in enumerate(proposal.order, start=1):
            row = rows[key]
            row.position = position
            row.enabled = key in proposal.enabled
            row.updated_at = now
        TransportSetting.objects.bulk_update(rows.values(), ["position", "enabled", "updated_at"])
