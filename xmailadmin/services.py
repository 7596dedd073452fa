"""What the views (and beat) ask for: check that a worker runs, create the row, publish.

Views validate input and call these; they never run a mail command. Each ``start_*``
refuses early when no worker could run the job, creates the row (which belongs to
this machine's server) and hands it to ``jobs.publish``; tasks run the commands and
finish the rows (jobs.py). The one workflow here that a task calls is the write of a
confirmed relay configuration, with its audit entries (``apply_confirmed``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from transports.catalogue import BY_KEY

from . import health, jobs, relay_settings
from .crypto import encrypt
from .jobs import NotAccepted
from .models import (
    ACTIVE_STATES,
    Account,
    AuditEntry,
    Diagnosis,
    ProbeRun,
    RelayJob,
    Server,
    State,
    TestSend,
    Trigger,
    real_user,
)
from .texts import say

# The tasks, by name: tasks.py imports this module, never the other way round.
PROBE_ALL = "xmailadmin.tasks.probe_all"
SEND_TEST = "xmailadmin.tasks.send_test"
RELAY_CHECK = "xmailadmin.tasks.relay_check"
RELAY_APPLY = "xmailadmin.tasks.relay_apply"
DIAGNOSE = "xmailadmin.tasks.diagnose"


def ensure_worker(server: Server | None = None) -> None:
    """Refuse early when no task could run on ``server`` (this machine if None), instead
    of letting the page wait forever."""
    problem = health.current(server=server).problem
    if problem:
        raise NotAccepted(problem)


# --- probes -----------------------------------------------------------------


def start_probe(user, trigger: str = Trigger.MANUAL, *, server: Server | None = None) -> ProbeRun:
    """Queue a probe of all mail commands of ``server`` (this machine if None); a probe
    already queued or running there is reused."""
    server = server or Server.local()
    ensure_worker(server)
    jobs.expire_stale(server)
    with transaction.atomic():
        active = (
            ProbeRun.objects.select_for_update()
            .filter(server=server, state__in=ACTIVE_STATES)
            .first()
        )
        if active is not None:
            return active
        run = ProbeRun.objects.create(
            server=server, trigger=trigger, requested_by=real_user(user)
        )
    AuditEntry.record(user, AuditEntry.Action.PROBE_STARTED, target=_("all commands"))
    jobs.publish(run, PROBE_ALL, run_id=run.id)
    return run


# --- test sends -------------------------------------------------------------


def _check_rate(account: Account, wanted: int) -> None:
    """A burst of clicks must not become a burst of mails to the provider (which may
    block the account for it): at most XMAILADMIN_TEST_MAILS_PER_MINUTE per account."""
    limit = settings.XMAILADMIN_TEST_MAILS_PER_MINUTE
    since = timezone.now() - timedelta(minutes=1)
    sent = TestSend.objects.filter(account=account, created_at__gte=since).count()
    if sent and sent + wanted > max(limit, wanted):
        raise NotAccepted(
            _(
                "Too many test mails for “%(name)s”: at most %(limit)d a minute. "
                "Please wait a minute."
            )
            % {"name": account.name, "limit": limit}
        )


def start_tests(
    account: Account,
    keys: Sequence[str],
    user,
    *,
    mode_tried: str = "",
    sender_tried: str = "",
    server: Server | None = None,
) -> list[TestSend]:
    """One TestSend row per command, each its own task; the tasks run in parallel.

    A command that already has a queued or running test for this account
    keeps that row: a second click never sends a second mail at once. ``mode_tried``
    and ``sender_tried`` are a one-click retry's change to the account, for this test only.
    The tests run on ``server``'s worker (this machine's if None).
    """
    server = server or Server.local()
    if not account.usable_on(server):
        raise NotAccepted(
            _("The account %(name)s is used only on the server %(server)s, not on %(here)s.")
            % {"name": account.name, "server": account.used_on.name, "here": server.name}
        )
    ensure_worker(server)
    jobs.expire_stale(server)
    _check_rate(account, len(keys))
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
                    server=server,
                    account=account,
                    account_name=account.name,
                    command=key,
                    recipient=account.recipient,
                    batch=batch,
                    mode_tried=mode_tried,
                    sender_tried=sender_tried,
                    language=language[:8],
                    requested_by=real_user(user),
                )
            new.append(send)
        except IntegrityError:  # already queued or running: keep that one
            send = TestSend.objects.filter(
                server=server, account=account, command=key, state__in=ACTIVE_STATES
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
            jobs.publish(send, SEND_TEST, send_id=send.id)
        except NotAccepted as exc:  # the broker is gone: none of the others is sent either
            for unsent in new[i + 1 :]:
                jobs.fail(unsent, str(exc), step="queue")
            raise
    return rows


# --- diagnosis ----------------------------------------------------------------------


def start_diagnosis(diagnosis: Diagnosis, user, *, password: str = "") -> Diagnosis:
    """Queue a server check or DNS check described by the unsaved ``diagnosis``. A
    ``password`` typed for it travels encrypted in the row, never in the job's message.
    It runs on the row's server (this machine when none is set)."""
    if diagnosis.server_id is None:
        diagnosis.server = Server.local()
    ensure_worker(diagnosis.server)
    jobs.expire_stale(diagnosis.server)
    diagnosis.requested_by = real_user(user)
    diagnosis.language = (translation.get_language() or settings.LANGUAGE_CODE)[:8]
    if password:
        diagnosis.password_encrypted = encrypt(password)
    diagnosis.save()
    jobs.publish(diagnosis, DIAGNOSE, diagnosis_id=diagnosis.id)
    return diagnosis


# --- relays -----------------------------------------------------------------------


def start_relay_check(
    mta: str, account: Account, user, *, server: Server | None = None
) -> RelayJob:
    """Queue a look at the relay for ``account``; a job already queued or running for
    this relay is returned instead (a check must not read files an apply is writing)."""
    job = RelayJob(server=server or Server.local(), mta=mta, kind=RelayJob.Kind.CHECK)
    row = _start_relay_job(
        RELAY_CHECK, job, account, user, AuditEntry.Action.RELAY_CHECK, detail=account.name
    )
    if row.pk != job.pk and (row.kind != job.kind or row.account_id != account.pk):
        raise _busy(mta)
    return row


def _busy(mta: str) -> NotAccepted:
    return NotAccepted(
        _("Another job on %(mta)s is still running; try again when it has finished.")
        % {"mta": mta}
    )


def start_relay_apply(confirmed: RelayJob, user) -> RelayJob:
    """Queue the write of the configuration the administrator saw in ``confirmed``."""
    account = confirmed.account
    if account is None:
        raise NotAccepted(_("The account was deleted."))
    files = [confirmed.config.get("settings_path", "")]
    files += [f["path"] for f in confirmed.config.get("files", [])]
    job = RelayJob(server=confirmed.server, mta=confirmed.mta, kind=RelayJob.Kind.APPLY,
                   confirmed=confirmed)  # fmt: skip
    row = _start_relay_job(
        RELAY_APPLY,
        job,
        account,
        user,
        AuditEntry.Action.RELAY_APPLY,
        detail=f"{account.name}: " + ", ".join(f for f in files if f),
    )
    if row.pk != job.pk:
        raise _busy(confirmed.mta)
    return row


def _start_relay_job(
    task: str, job: RelayJob, account: Account, user, action, detail
) -> RelayJob:
    """Queue ``job`` (its server set) on its server's relay."""
    ensure_worker(job.server)
    jobs.expire_stale(job.server)
    job.account = account
    job.account_name = account.name
    job.requested_by = real_user(user)
    job.language = (translation.get_language() or settings.LANGUAGE_CODE)[:8]
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError:  # a job on this relay is queued or running: show that one
        active = RelayJob.objects.filter(
            server=job.server, mta=job.mta, state__in=ACTIVE_STATES
        ).first()
        if active is not None:
            return active
        raise NotAccepted(_("Please try again.")) from None
    AuditEntry.record(user, action, target=job.mta, detail=detail)
    jobs.publish(job, task, check_id=job.id)
    return job


def apply_confirmed(job: RelayJob, relay, wanted, *, config_error: str) -> dict | None:
    """Write the configuration the administrator confirmed (``job.confirmed``), if the
    account and the settings still make exactly that one, and audit the outcome.

    Returns the ApplyResult as the row keeps it, or None when nothing was written: then the row has
    failed, with its audit entry. ``wanted`` is the RelayAccount, None when the account
    cannot configure a relay (``config_error`` says why).
    """
    if wanted is None:
        _not_applied(job, config_error)
        return None
    confirmed = job.confirmed
    now = relay_settings.shown(relay.render(wanted), wanted.password)
    # Compared as the row keeps it (jobs.record), so the same configuration is equal.
    if confirmed is None or confirmed.config != jobs.scrubbed(now, wanted.user, wanted.password):
        _not_applied(
            job,
            _(
                "Nothing was written: the configuration is no longer the one that was "
                "confirmed (the account or the relay settings changed). Check again and "
                "confirm the new one."
            ),
        )
        return None
    applied = relay.apply(wanted, confirm=True)
    result = jobs.scrubbed(applied.to_dict(), wanted.user, wanted.password)
    AuditEntry.record(
        job.requested_by,
        AuditEntry.Action.RELAY_APPLIED if applied.ok else AuditEntry.Action.RELAY_NOT_APPLIED,
        target=job.mta,
        detail=" · ".join([say(result["reason"]), *result.get("backups", [])]),
    )
    return result


def _not_applied(job: RelayJob, reason: str) -> None:
    AuditEntry.record(
        job.requested_by, AuditEntry.Action.RELAY_NOT_APPLIED, target=job.mta, detail=reason
    )
    jobs.finish(job, state=State.FAILED, error=reason)
