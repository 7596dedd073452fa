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
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from transports import detection, registry
from transports.base import Mode, Target, TargetError, Transport
from transports.message import build_test_message
from transports.secrecy import redact

from . import jobs, order, relays, services
from .crypto import PasswordUnreadable
from .models import (
    Account,
    ProbeResult,
    ProbeRun,
    RelayCheck,
    State,
    TestSend,
    Trigger,
)

log = logging.getLogger(__name__)


def _text(value: str | None, limit: int | None = None) -> str:
    """Tool output as a column takes it: no NUL byte (PostgreSQL refuses it), capped."""
    text = (value or "").replace("\x00", "\\x00")
    return text[:limit] if limit else text


def _redacted(value: Any, user: str, password: str) -> Any:
    """A string, or JSON data, with every spelling of the password removed from every string."""
    if isinstance(value, str):
        return _text(redact(value, user, password))
    if isinstance(value, dict):
        return {k: _redacted(v, user, password) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, user, password) for v in value]
    return value


def _described(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _account_password(row: TestSend | RelayCheck) -> tuple[Account, str] | None:
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
        found = detection.probe_all()
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
                    note=_text(d.note),
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
        jobs.finish(run, state=State.FAILED, error=_described(exc))
    else:
        jobs.finish(run, state=State.PASSED)


# --- test sends ---------------------------------------------------------------


@shared_task(bind=True)
def send_test(self, *, send_id: int) -> str:
    return jobs.run_claimed(
        TestSend,
        send_id,
        self.request.hostname,
        _send,
        what="test send",
        stopped=gettext_lazy("Time limit of %(s)d s exceeded; the attempt was stopped."),
        crashed=lambda send, exc: _described(exc),
    )


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


def _send(send: TestSend) -> None:
    found = _account_password(send)
    if found is None:
        return
    account, password = found
    try:
        target = _target(account, send, password)
    except TargetError as exc:
        jobs.finish(send, state=State.FAILED, step="config", reason=str(exc))
        return
    message = build_test_message(
        sender=account.sender,
        recipient=send.recipient,
        command=send.command,
        test_id=str(send.test_id),
        language=send.language,
    )

    def clean(text: str) -> str:
        return _redacted(text or "", account.username, password)

    try:
        result = _transport(send.command).send(target, message)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        log.error("test send %s: transport raised %s", send.id, type(exc).__name__)
        jobs.fail(send, clean(_described(exc)), step="unknown")
        return

    _record(send, result, clean)


def _record(send: TestSend, result, clean) -> None:
    # Kept as transports gave them (message id and parameters): pages say them in the
    # language of whoever reads, with the values of this send.
    jobs.finish(
        send,
        state=State.of(result),
        step=result.step.value,
        reason=clean(str(result.reason)),
        reason_code=result.reason_code,
        reason_text=result.reason.map(clean).to_dict(),
        detail=clean(result.detail),
        exit_code=result.exit_code,
        transcript=clean(result.transcript),
        tls_version=result.tls_version or "",
        verified=result.verified,
        delivered=result.delivered,
        warnings=[w.map(clean).to_dict() for w in result.warnings],
        duration_s=result.duration_s,
    )


def _transport(key: str) -> Transport:
    """The mail command; sendmail of postfix or exim (and bsd-mailx, which calls it)
    follows the relay the settings name, else the system's own."""
    relay = None
    if key in relays.MTAS:
        relay = relays.configured(key)
    elif key == "mailx-bsd":
        relay = relays.configured("postfix")
    if relay is None:
        return registry.get(key)
    return registry.TRANSPORTS[key](relay=relay)


def _target(account: Account, send: TestSend, password: str) -> Target:
    kwargs = {
        "host": account.host,
        "port": account.port,
        "user": account.username,
        "password": password,
        "sender": account.sender,
        "recipient": send.recipient,
        "mode": Mode(account.mode) if account.mode else None,
        "ca_file": account.ca_file or None,
        "timeout": float(settings.XMAILADMIN_SEND_TIMEOUT),
        "verify": account.verify,
    }
    return Target(**kwargs)


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
        RelayCheck,
        check_id,
        hostname,
        _relay,
        what="relay job",
        stopped=gettext_lazy("Time limit of %(s)d s exceeded; the job was stopped."),
        crashed=_secret_free,
    )


def _secret_free(job: RelayCheck, exc: Exception) -> str:
    account = job.account
    try:
        password = account.decrypt_password() if account else ""
    except PasswordUnreadable:
        password = ""
    return _redacted(_described(exc), account.username if account else "", password)


def _relay(job: RelayCheck) -> None:
    found = _account_password(job)
    if found is None:
        return
    account, password = found

    def clean(value: Any) -> Any:
        """JSON data with every spelling of the password removed from every string."""
        return _redacted(value, account.username, password)

    relay = relays.relay_for(job.mta)
    try:
        wanted = relays.relay_account(account, password)
    except TargetError as exc:
        wanted, config_error = None, clean(str(exc))
    else:
        config_error = ""

    result: dict = {}
    if job.kind == RelayCheck.Kind.APPLY:
        applied = services.apply_confirmed(
            job, relay, wanted, config_error=config_error, password=password, clean=clean
        )
        if applied is None:
            return
        result = applied

    status = relay.status()
    differences: list = []
    config: dict = {}
    if wanted is not None:
        try:
            differences = [d.to_dict() for d in relay.compare(status, wanted)]
            config = relays.shown(relay.render(wanted), password)
        except (TargetError, ValueError) as exc:  # e.g. exim and an IPv6 address
            config_error = str(exc)
    jobs.finish(
        job,
        state=job.state_after(applied=result, differences=differences, config_error=config_error),
        status=clean(status.to_dict()),
        differences=clean(differences),
        config=clean(config),
        config_error=clean(config_error),
        result=result,
    )
