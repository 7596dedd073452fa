"""Celery tasks: one small task per job kind. Each loads its row, calls ``transports``
and lets the row record the outcome; the row's life (claim, finish, fail) is jobs.py.

Every task ends with its row in a final state: passed, passed with a note,
or failed with the reason. Time limits come from ``CELERY_TASK_TIME_LIMIT``;
the soft limit raises inside the task, which then records the timeout.
The SMTP password is decrypted here, right before the transport needs it,
and goes nowhere else: not into task arguments, logs or the row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from transports import probe
from transports.base import TargetError
from transports.cert_probe import name_issuer
from transports.dns_check import DnsReport, check_domain
from transports.findings import Level
from transports.message import build_test_message
from transports.server_check import ServerReport, check_server

from . import delivery, health_check, jobs, order, relay_settings, services
from .crypto import PasswordUnreadable, decrypt
from .models import (
    Account,
    Diagnosis,
    ProbeResult,
    ProbeRun,
    RelayJob,
    State,
    TestSend,
    Trigger,
)

log = logging.getLogger(__name__)


def _text(value: str | None, limit: int | None = None) -> str:
    """Tool output as a column takes it: no NUL byte (PostgreSQL refuses it), capped."""
    text = (value or "").replace("\x00", "\\x00")
    return text[:limit] if limit else text


def _account_password(row: TestSend | RelayJob) -> tuple[Account, str] | None:
    """The row's account and its password, right before a transport needs them; None once
    the row has failed because the account is gone or its password unreadable."""
    account = row.account
    if account is None:
        jobs.fail(row, _("The account was deleted."), step="config")
        return None
    try:
        return account, account.decrypt_password()
    except PasswordUnreadable:
        jobs.fail(
            row,
            _(
                "The stored password cannot be decrypted with the configured key. Enter "
                "the password in the account again."
            ),
            step="config",
        )
        return None


def _with_password(row: TestSend | RelayJob, work: Callable) -> None:
    """Run ``work(row, account, password)`` and record the outcome it returns (None: it
    has finished the row itself). Here is where the password is known, so a transport's
    error is recorded here too, as the row's failure, with the password removed."""
    found = _account_password(row)
    if found is None:
        return
    account, password = found
    try:
        outcome = work(row, account, password)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # a final state, whatever the transport did
        log.error("%s %s: transport raised %s", type(row).__name__, row.id, type(exc).__name__)
        outcome = {"state": State.FAILED, **jobs.failure(row, jobs.described(exc), "unknown")}
    if outcome is not None:
        jobs.record(row, outcome, user=account.username, password=password)


# --- probe --------------------------------------------------------------------


@shared_task(bind=True)
def probe_all(self, *, run_id: int) -> str:
    run = jobs.claim(ProbeRun, run_id, self.request.hostname)
    if run is None:
        return "skipped"
    _probe(run)
    return run.state


@shared_task(bind=True)
def scheduled_probe(self) -> str:
    """Beat's probe: runs inline unless a probe is already active."""
    if ProbeRun.objects.filter(state__in=[State.QUEUED, State.RUNNING]).exists():
        return "skipped"
    run = ProbeRun.objects.create(
        trigger=Trigger.SCHEDULED,
        state=State.RUNNING,
        started_at=timezone.now(),
        worker=self.request.hostname or "",
    )
    _probe(run)
    return run.state


def _probe(run: ProbeRun) -> None:
    try:
        found = probe.probe_all()
        ProbeResult.objects.bulk_create(
            [
                ProbeResult(
                    run=run,
                    key=d.key,
                    found=d.found,
                    path=_text(d.path, 1024),
                    version=_text(d.version, 255),
                    tls_library=_text(d.tls_library, 64),
                    tls_library_version=_text(d.tls_library_version, 64),
                    tls12=d.tls12,
                    tls13=d.tls13,
                    evidence=[_text(e) for e in d.evidence],
                    ldd_ssl=_text(d.ldd_ssl),
                    notes=[note.map(_text).to_dict() for note in d.notes],
                    usable=d.usable,
                    duration_s=d.duration_s,
                )
                for d in found
            ]
        )
    except SoftTimeLimitExceeded:
        jobs.finish(run, state=State.FAILED, error=_("The probe exceeded its time limit."))
    except Exception as exc:
        log.exception("probe %s failed", run.id)
        jobs.finish(run, state=State.FAILED, error=jobs.described(exc))
    else:
        jobs.finish(run, state=State.PASSED)


# --- test sends ---------------------------------------------------------------


@shared_task(bind=True)
def send_test(self, *, send_id: int) -> str:
    return _claimed_send(self, send_id, "test send")


def _claimed_send(task, send_id: int, what: str) -> str:
    """The test send of row ``send_id``, by ``task`` (its own time limit said if hit)."""
    return jobs.run_claimed(
        TestSend,
        send_id,
        task.request.hostname,
        partial(_with_password, work=_send),
        what=what,
        stopped=gettext_lazy("Time limit of %(s)d s exceeded; the attempt was stopped."),
        limit=task.soft_time_limit,
    )


@shared_task(bind=True, time_limit=health_check.ALERT_BUDGET_S + 120,
             soft_time_limit=health_check.ALERT_BUDGET_S + 110)  # fmt: skip
def scheduled_check(self, *, send_id: int) -> str:
    """The health check of this server (health_check.py): a test send, then its alert."""
    state = _claimed_send(self, send_id, "health check")
    if state != "skipped":
        health_check.after_check(TestSend.objects.get(pk=send_id))
    return state


@shared_task
def scheduled_health() -> int:
    """Beat's: queue the health check of every server whose worker is alive."""
    return len(health_check.start_all())


@shared_task
def send_test_all(*, account_id: int, user_id: int | None = None) -> list[int]:
    """Queue one test per enabled command (used by schedules and scripts)."""
    account = Account.objects.get(pk=account_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    rows = services.start_tests(account, order.enabled_keys(), user)
    return [r.id for r in rows]


@shared_task
def expire_stale() -> int:
    return jobs.expire_stale()


def _send(send: TestSend, account: Account, password: str) -> dict:
    try:
        target = send.target(account, password)
    except TargetError as exc:
        return {"state": State.FAILED, "step": "config", "reason": str(exc)}
    result = relay_settings.transport_for(send.command).send(target, _testmail(send, target.sender))
    return TestSend.outcome(name_issuer(result, target))


def _testmail(send: TestSend, sender: str) -> bytes:
    return build_test_message(
        sender=sender,
        recipient=send.recipient,
        command=send.command,
        test_id=str(send.test_id),
        language=send.language,
    )


# --- diagnosis (the server check) --------------------------------------------------------

_LEVEL_STATE = {Level.PASS: State.PASSED, Level.WARN: State.WARNING, Level.FAIL: State.FAILED}


@shared_task(bind=True)
def diagnose(self, *, diagnosis_id: int) -> str:
    return jobs.run_claimed(
        Diagnosis,
        diagnosis_id,
        self.request.hostname,
        _diagnose,
        what="diagnosis",
        stopped=gettext_lazy("Time limit of %(s)d s exceeded; the check was stopped."),
    )


def _diagnose(row: Diagnosis) -> None:
    """Run the check and keep its report; the typed password is emptied whatever happens."""
    password = ""
    try:
        if row.kind == Diagnosis.Kind.DNS:
            report = _dns_report(row)
        else:
            password = _diagnosis_password(row)
            report = _server_report(row, password)
    except (TargetError, ValueError, PasswordUnreadable) as exc:
        jobs.finish(row, state=State.FAILED, error=str(exc))
        return
    finally:
        Diagnosis.objects.filter(pk=row.pk).update(password_encrypted="")
    outcome = {"state": _LEVEL_STATE[report.level], "report": report.to_dict()}
    jobs.record(row, outcome, user=row.username, password=password)


def _diagnosis_password(row: Diagnosis) -> str:
    """The password for the optional login: typed for this check, else the account's."""
    if not row.use_login:
        return ""
    if row.password_encrypted:
        return decrypt(row.password_encrypted)
    return row.account.decrypt_password() if row.account is not None else ""


def _server_report(row: Diagnosis, password: str) -> ServerReport:
    login = row.use_login and bool(row.username and password)
    return check_server(
        row.host,
        row.port or 0,
        mode=row.mode or None,
        ca_file=row.ca_file or None,
        user=row.username if login else None,
        password=password if login else None,
        timeout=float(settings.XMAILADMIN_CHECK_TIMEOUT),
    )


def _dns_report(row: Diagnosis) -> DnsReport:
    return check_domain(
        row.domain,
        nameserver=settings.XMAILADMIN_DNS_NAMESERVER or None,
        smtp_host=row.host or None,
        dkim_selectors=row.selectors or [],
        envelope_sender=row.sender or None,
        auth_user=row.username or None,
        timeout=float(settings.XMAILADMIN_CHECK_TIMEOUT),
    )


# --- relays (postfix, exim) ------------------------------------------------------------


@shared_task(bind=True)
def relay_check(self, *, check_id: int) -> str:
    """Read the relay's state, compare it with the account, make its configuration."""
    return _relay_job(check_id, self.request.hostname)


@shared_task(bind=True)
def relay_apply(self, *, check_id: int) -> str:
    """Write the confirmed configuration (backup, check, reload or roll back), then look
    at the relay again."""
    return _relay_job(check_id, self.request.hostname)


def _relay_job(check_id: int, hostname: str | None) -> str:
    return jobs.run_claimed(
        RelayJob,
        check_id,
        hostname,
        partial(_with_password, work=_relay),
        what="relay job",
        stopped=gettext_lazy("Time limit of %(s)d s exceeded; the job was stopped."),
    )


def _relay(job: RelayJob, account: Account, password: str) -> dict | None:
    relay = relay_settings.relay_for(job.mta)
    try:
        wanted, config_error = relay_settings.relay_account(account, password), ""
    except TargetError as exc:
        wanted, config_error = None, str(exc)
    applied: dict = {}
    if job.kind == RelayJob.Kind.APPLY:
        applied = services.apply_confirmed(job, relay, wanted, config_error=config_error)
        if applied is None:  # nothing written: the row has failed, with its audit entry
            return None
    return _looked_at(job, relay, wanted, config_error, applied=applied)


def _looked_at(job: RelayJob, relay, wanted, config_error: str, *, applied: dict) -> dict:
    """The relay's state, how it differs from the account, the configuration it needs."""
    status = relay.status()
    differences: list = []
    config: dict = {}
    if wanted is not None:
        try:
            differences = [d.to_dict() for d in relay.compare(status, wanted)]
            config = relay_settings.shown(relay.render(wanted), wanted.password)
        except (TargetError, ValueError) as exc:  # e.g. exim and an IPv6 address
            config_error = str(exc)
    state = job.state_after(applied=applied, differences=differences, config_error=config_error)
    return {
        "state": state,
        "status": status.to_dict(),
        "differences": differences,
        "config": config,
        "config_error": config_error,
        "result": applied,
    }


# --- the outbox ----------------------------------------------------------------------


# A run stops taking messages after its budget; one message may still need every command
# of the order (each up to XMAILADMIN_SEND_TIMEOUT), hence the generous hard limit.
@shared_task(time_limit=3600, soft_time_limit=3590)
def deliver_outbox() -> dict:
    """Take what xmail-sendmail dropped and deliver what is due (outbox/, delivery.py)."""
    summary = delivery.run(budget_s=60.0)
    if delivery.due_now():
        deliver_outbox.delay()  # the budget ended with work left: go on in a fresh task
    return {k: v for k, v in vars(summary).items() if k != "ids"}
