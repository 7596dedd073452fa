"""Celery tasks: thin wrappers that load a row, call ``transports``, write the outcome.

Every task ends with its row in a final state: passed, passed with a note,
or failed with the reason. Time limits come from ``CELERY_TASK_TIME_LIMIT``;
the soft limit raises inside the task, which then records the timeout.
The SMTP password is decrypted here, right before the transport needs it,
and goes nowhere else: not into task arguments, logs or the row.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from transports import detection, registry
from transports.base import Mode, Target, TargetError
from transports.message import build_test_message
from transports.secrecy import redact

from . import services
from .crypto import PasswordUnreadable
from .models import Account, ProbeResult, ProbeRun, State, TestSend, Trigger

log = logging.getLogger(__name__)


def _text(value: str | None, limit: int | None = None) -> str:
    """Tool output as a column takes it: no NUL byte (PostgreSQL refuses it), capped."""
    text = (value or "").replace("\x00", "\\x00")
    return text[:limit] if limit else text


def _claim(model, pk: int, hostname: str):
    """Queued → running, exactly once; None when another delivery already took it."""
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None or row.state != State.QUEUED:
            return None
        row.state = State.RUNNING
        row.started_at = timezone.now()
        row.worker = hostname or ""
        row.save(update_fields=["state", "started_at", "worker"])
    return row


# --- probe --------------------------------------------------------------------


@shared_task(bind=True)
def probe_all(self, *, run_id: int) -> str:
    run = _claim(ProbeRun, run_id, self.request.hostname)
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
        services.finish(run, state=State.FAILED, error=_("The probe exceeded its time limit."))
    except Exception as exc:
        log.exception("probe %s failed", run.id)
        services.finish(run, state=State.FAILED, error=f"{type(exc).__name__}: {exc}")
    else:
        services.finish(run, state=State.PASSED)


# --- test sends ---------------------------------------------------------------


@shared_task(bind=True)
def send_test(self, *, send_id: int) -> str:
    send = _claim(TestSend, send_id, self.request.hostname)
    if send is None:
        return "skipped"
    with translation.override(send.language):
        try:
            _send(send)
        except SoftTimeLimitExceeded:
            services.finish(
                send,
                state=State.FAILED,
                step="timeout",
                reason=_("Time limit of %(s)d s exceeded; the attempt was stopped.")
                % {"s": settings.CELERY_TASK_SOFT_TIME_LIMIT},
            )
        except Exception as exc:  # a final state, whatever went wrong
            log.error("test send %s failed: %s", send.id, type(exc).__name__)
            services.finish(
                send, state=State.FAILED, step="unknown", reason=f"{type(exc).__name__}: {exc}"
            )
    return send.state


@shared_task
def send_test_all(*, account_id: int, user_id: int | None = None) -> list[int]:
    """Queue one test per enabled command (used by schedules and scripts)."""
    account = Account.objects.get(pk=account_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    rows = services.start_tests(account, services.enabled_keys(), user)
    return [r.id for r in rows]


@shared_task
def expire_stale() -> int:
    return services.expire_stale()


def _send(send: TestSend) -> None:
    account = send.account
    if account is None:
        services.finish(
            send, state=State.FAILED, step="config", reason=_("The account was deleted.")
        )
        return
    try:
        password = account.decrypt_password()
    except PasswordUnreadable:
        services.finish(
            send,
            state=State.FAILED,
            step="config",
            reason=_(
                "The stored password cannot be decrypted with the configured key. Enter "
                "the password in the account again."
            ),
        )
        return
    try:
        target = _target(account, send, password)
    except TargetError as exc:
        services.finish(send, state=State.FAILED, step="config", reason=str(exc))
        return
    message = build_test_message(
        sender=account.sender,
        recipient=send.recipient,
        command=send.command,
        test_id=str(send.test_id),
        language=send.language,
    )

    def clean(text: str) -> str:
        return _text(redact(text or "", account.username, password))

    try:
        result = registry.get(send.command).send(target, message)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        log.error("test send %s: transport raised %s", send.id, type(exc).__name__)
        services.finish(
            send, state=State.FAILED, step="unknown", reason=clean(f"{type(exc).__name__}: {exc}")
        )
        return

    # Kept as transports spells them: pages translate them for whoever reads.
    warnings = [clean(w) for w in result.warnings]
    if not result.ok:
        state = State.FAILED
    elif warnings or not result.verified or result.delivered is False:
        state = State.WARNING
    else:
        state = State.PASSED
    services.finish(
        send,
        state=state,
        step=result.step.value,
        reason=clean(result.reason),
        reason_code=result.reason_code,
        detail=clean(result.detail),
        exit_code=result.exit_code,
        transcript=clean(result.transcript),
        tls_version=result.tls_version or "",
        verified=result.verified,
        delivered=result.delivered,
        warnings=warnings,
        duration_s=result.duration_s,
    )


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
