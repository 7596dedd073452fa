"""The panel's rows: SMTP accounts, the preferred order, probes, test sends, audit.

Tasks write their outcome into these rows; pages render and poll them.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Max, Q
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from transports.base import Mode, Target, TargetError, normalise_host
from transports.catalogue import BY_KEY, CATALOGUE, Entry
from transports.relay import BOUNCED_BY

from . import validators
from .celery import app as celery_app
from .crypto import decrypt, encrypt
from .texts import DELIVERY, UNVERIFIED_CODES, said, say

ADMIN_GROUP = "Administrator"
SUPPORT_GROUP = "Support"
# What the two roles may do (permissions on the Account model, see Meta).
PERM_VIEW = "xmailadmin.view_panel"
PERM_RUN = "xmailadmin.run_checks"
PERM_CHANGE = "xmailadmin.change_settings"


class State(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    PASSED = "passed", _("passed")
    WARNING = "warning", _("passed with a note")
    FAILED = "failed", _("failed")
    # Neutral: the command is not on this server, so nothing was tried (no red row).
    NOT_INSTALLED = "not_installed", _("not installed")

    @classmethod
    def of(cls, result) -> State:
        """The final state of a test send from the transport's ``SendResult``: a missing
        command is neutral, a failure red (a relay that did not deliver among them), a send
        with a note amber (a warning, a certificate not verified)."""
        if result.reason_code == "not_installed":
            return cls.NOT_INSTALLED
        if not result.ok:
            return cls.FAILED
        if result.warnings or not result.verified:
            return cls.WARNING
        return cls.PASSED


ACTIVE_STATES = (State.QUEUED, State.RUNNING)
# CSS class and the colour it means: green pass, amber partly, red fail.
STATE_CSS = {
    State.QUEUED: "running",
    State.RUNNING: "running",
    State.PASSED: "pass",
    State.WARNING: "partly",
    State.FAILED: "fail",
    State.NOT_INSTALLED: "unknown",
}


# The encryption modes are transports' Mode; these are only their names on the pages.
MODE_LABELS = {Mode.SMTPS: _("SMTPS (implicit TLS)"), Mode.STARTTLS: _("STARTTLS")}
MODE_CHOICES = [(mode.value, MODE_LABELS[mode]) for mode in Mode]


def real_user(user):
    """The user behind a request, or None for beat, scripts and anonymous callers."""
    return user if getattr(user, "is_authenticated", False) else None


class Account(models.Model):
    """One SMTP account the test mails are sent through."""

    name = models.CharField(
        _("Name"), max_length=100, unique=True, validators=[validators.reject_shell_chars]
    )
    host = models.CharField(_("Server"), max_length=253, validators=[validators.validate_host])
    port = models.PositiveIntegerField(
        _("Port"), validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    mode = models.CharField(
        _("Encryption"),
        max_length=16,
        choices=MODE_CHOICES,
        blank=True,
        help_text=_("Empty: by port (465 = SMTPS, otherwise STARTTLS)."),
    )
    username = models.CharField(
        _("User name"), max_length=254, validators=[validators.validate_username]
    )
    password_encrypted = models.TextField(editable=False, default="")
    sender = models.CharField(
        _("Sender address"), max_length=254, validators=[validators.validate_address]
    )
    recipient = models.CharField(
        _("Test recipient"), max_length=254, validators=[validators.validate_address]
    )
    ca_file = models.CharField(
        _("CA file"), max_length=1024, blank=True, validators=[validators.validate_ca_file]
    )
    # The name in the server's certificate, for relays (postfix checks names, never
    # addresses): needed only when the host is given as an IP address.
    tls_name = models.CharField(
        _("Certificate name (relays)"),
        max_length=253,
        blank=True,
        validators=[validators.validate_tls_name],
    )
    verify = models.BooleanField(_("Verify certificate"), default=True)
    is_default = models.BooleanField(_("Default account"), default=False)
    # The one server whose tests and mail use this account; empty: every server.
    used_on = models.ForeignKey(
        "Server", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("Used on"), help_text=_("Empty: on every server."),
    )  # fmt: skip
    # What the server itself showed to "Detect the mode" on the account form, and for
    # which host:port: the port/mode warning trusts it over the 465 rule.
    detected_mode = models.CharField(
        max_length=16, choices=MODE_CHOICES, blank=True, editable=False
    )
    detected_for = models.CharField(max_length=300, blank=True, editable=False)
    detected_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name = _("SMTP account")
        verbose_name_plural = _("SMTP accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_account"
            )
        ]
        permissions = [
            ("view_panel", "Can see the panel (support and administrators)"),
            ("run_checks", "Can run probes and test sends"),
            ("change_settings", "Can change accounts, order and relays"),
        ]

    def __str__(self) -> str:
        return self.name

    def validate_constraints(self, exclude=None) -> None:
        # The default flag moves with make_default() in one transaction; a form
        # that makes a second account the default is not a violation.
        super().validate_constraints(exclude={*(exclude or ()), "is_default"})

    @property
    def host_ascii(self) -> str:
        """The host as mail commands see it: an IDN name in its xn-- form, shown beside
        the Unicode one so that a look-alike name cannot pass unnoticed."""
        try:
            return normalise_host(self.host)
        except TargetError:
            return self.host

    @property
    def port_mode(self) -> str:
        return Mode.for_port(self.port).value

    @property
    def effective_mode(self) -> str:
        return self.mode or self.port_mode

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def detection(self) -> Mode | None:
        """The mode the server showed when detected for this very host and port, else None."""
        if self.detected_mode and self.detected_for == self.where:
            return Mode(self.detected_mode)
        return None

    def record_detection(self, mode: Mode) -> None:
        """Remember ``mode`` as detected now for the account's host and port (saved with it)."""
        self.detected_mode = Mode(mode).value
        self.detected_for = self.where
        self.detected_at = timezone.now()

    @property
    def mode_mismatch(self) -> bool:
        """The mode differs from what the server showed; without a detection, an explicit
        mode against the port rule (a guess: allowed, but warned)."""
        detected = self.detection
        if detected is not None:
            return self.effective_mode != detected
        return bool(self.mode) and self.mode != self.port_mode

    @property
    def mode_warning(self) -> str:
        """The port/mode warning in the reader's language, "" when there is none."""
        if not self.mode_mismatch:
            return ""
        mode = self.get_effective_mode_display()
        detected = self.detection
        if detected is not None:
            return _(
                "The server on port %(port)d expects %(detected)s, the account says %(mode)s."
            ) % {"port": self.port, "detected": MODE_LABELS[detected], "mode": mode}
        return _(
            "Port %(port)d is usually %(usual)s, the account says %(mode)s. Press “Detect the "
            "mode” to be sure."
        ) % {"port": self.port, "usual": MODE_LABELS[Mode.for_port(self.port)], "mode": mode}

    @property
    def mode_badge(self) -> str:
        """The short form of ``mode_warning`` for the list of accounts."""
        if not self.mode_mismatch:
            return ""
        detected = self.detection
        if detected is not None:
            return _("server expects %(detected)s") % {"detected": MODE_LABELS[detected]}
        return _("unusual for port %(port)d (not checked)") % {"port": self.port}

    def get_effective_mode_display(self) -> str:
        return str(MODE_LABELS[Mode(self.effective_mode)])

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    def set_password(self, raw: str) -> None:
        validators.reject_control_chars(raw)
        self.password_encrypted = encrypt(raw)

    def decrypt_password(self) -> str:
        """Only tasks call this, right before handing the password to a transport."""
        return decrypt(self.password_encrypted)

    def target(self, password: str, recipient: str) -> Target:
        """Where and how a test mail goes; raises TargetError for a value no tool may get."""
        return Target(
            host=self.host,
            port=self.port,
            user=self.username,
            password=password,
            sender=self.sender,
            recipient=recipient,
            mode=Mode(self.mode) if self.mode else None,
            ca_file=self.ca_file or None,
            timeout=float(settings.XMAILADMIN_SEND_TIMEOUT),
            verify=self.verify,
        )

    def make_default(self) -> None:
        with transaction.atomic():
            Account.objects.exclude(pk=self.pk).filter(is_default=True).update(is_default=False)
            Account.objects.filter(pk=self.pk).update(is_default=True)
            self.is_default = True

    @classmethod
    def on(cls, server: Server) -> models.QuerySet[Account]:
        """The accounts ``server`` uses: its own and those of every server."""
        return cls.objects.filter(Q(used_on=server) | Q(used_on__isnull=True))

    @classmethod
    def default(cls, server: Server | None = None) -> Account | None:
        """The default account of ``server`` (this machine if None), else its first."""
        return cls.on(server or Server.local()).order_by("-is_default", "name").first()

    def usable_on(self, server: Server) -> bool:
        return self.used_on_id is None or self.used_on_id == server.pk


@receiver(post_save, sender=Account)
def _audit_account_saved(sender, instance: Account, created: bool, raw: bool, **kwargs) -> None:
    """Audited here, not in a view, so a change by any path leaves its entry; a page
    names who did it (``audit_as``), anything else is "system"."""
    user, detail = getattr(instance, "audit_as", (None, ""))
    action = AuditEntry.Action.ACCOUNT_CREATED if created else AuditEntry.Action.ACCOUNT_CHANGED
    AuditEntry.record(user, action, target=instance.name, detail=detail)


@receiver(post_delete, sender=Account)
def _audit_account_deleted(sender, instance: Account, **kwargs) -> None:
    user, _detail = getattr(instance, "audit_as", (None, ""))
    AuditEntry.record(user, AuditEntry.Action.ACCOUNT_DELETED, target=instance.name)


@receiver(pre_save, sender=Account)
def _check_account(sender, instance: Account, **kwargs) -> None:
    """Every way in (the panel's form, /admin/, ``loaddata``, ORM code) saves through
    here: a value that reaches a mail command's config file is checked whoever wrote
    it. (``QuerySet.update`` skips this; ``Target`` checks again before any send.)"""
    instance.full_clean(
        exclude=["password_encrypted"], validate_unique=False, validate_constraints=False
    )


def local_server_name() -> str:
    """This machine's name among the servers: XMAILADMIN_SERVER_NAME, else its host name."""
    return os.environ.get("XMAILADMIN_SERVER_NAME", "").strip() or socket.gethostname()


class Server(models.Model):
    """A machine whose worker runs the jobs of its rows, from a Celery queue of its own.

    Today there is one: this machine (``local()``). The order, the heartbeats and every
    job row name their server, so that several machines' rows stay apart.
    """

    name = models.CharField(max_length=255, unique=True)
    queue = models.CharField(max_length=255)  # the Celery queue its worker takes jobs from
    last_seen = models.DateTimeField(null=True, blank=True)  # its worker's newest heartbeat
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("server")
        verbose_name_plural = _("servers")

    def __str__(self) -> str:
        return self.name

    @classmethod
    def local(cls) -> Server:
        """This machine's row, made on first use. Its queue follows this machine's Celery
        configuration (CELERY_TASK_DEFAULT_QUEUE): a changed queue holds from the next job."""
        queue = celery_app.conf.task_default_queue
        server, _created = cls.objects.get_or_create(
            name=local_server_name(), defaults={"queue": queue}
        )
        if server.queue != queue:
            cls.objects.filter(pk=server.pk).update(queue=queue)
            server.queue = queue
        return server


class OnServer(models.Model):
    """A row of one server: saved without one, it is this machine's (``Server.local``).

    Filled in at saving, not as a field default: that would ask the database whenever
    a row object is made, even one that is never saved.
    """

    server = models.ForeignKey(Server, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if self.server_id is None:
            self.server = Server.local()
        super().save(*args, **kwargs)


class TransportSetting(OnServer):
    """Position of one mail command in a server's preferred order, and whether it is used."""

    key = models.CharField(max_length=32)
    position = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "key"]
        verbose_name = _("mail command setting")
        verbose_name_plural = _("preferred order")
        constraints = [
            models.UniqueConstraint(fields=["server", "key"], name="one_setting_per_server_key")
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def entry(self) -> Entry:
        return BY_KEY[self.key]

    @classmethod
    def ordered(cls, server: Server | None = None) -> list[TransportSetting]:
        """All catalogue commands in the preferred order of ``server`` (this machine if
        None); rows are created on first use."""
        server = server or Server.local()
        rows = [r for r in cls.objects.filter(server=server) if r.key in BY_KEY]
        known = {r.key for r in rows}
        missing = [e for e in CATALOGUE if e.key not in known]
        if missing:
            start = max((r.position for r in rows), default=0)
            cls.objects.bulk_create(
                [
                    cls(server=server, key=e.key, position=start + i)
                    for i, e in enumerate(missing, start=1)
                ],
                ignore_conflicts=True,
            )
            rows = [r for r in cls.objects.filter(server=server) if r.key in BY_KEY]
        return rows


class Trigger(models.TextChoices):
    MANUAL = "manual", _("by hand")
    SCHEDULED = "scheduled", _("scheduled")


class Job(OnServer):
    """What every task row has: its server, its state, who asked, when it ran and on which
    worker. How a row lives (published, claimed, finished, expired) is in jobs.py."""

    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    # The columns that hold a tool's words, which jobs.record scrubs of the password.
    TOOL_WORDS: tuple[str, ...] = ()

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def css(self) -> str:
        return STATE_CSS[State(self.state)]


class ProbeRun(Job):
    """One probe of all mail commands; its results are ProbeResult rows."""

    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    error = models.TextField(blank=True)

    class Meta(Job.Meta):
        verbose_name = _("probe")
        verbose_name_plural = _("probes")

    @classmethod
    def latest_finished(cls, server: Server | None = None) -> ProbeRun | None:
        """The newest probe that ended, of ``server`` (this machine if None)."""
        return cls.objects.filter(server=server or Server.local(), state=State.PASSED).first()


class ProbeResult(models.Model):
    run = models.ForeignKey(ProbeRun, on_delete=models.CASCADE, related_name="results")
    key = models.CharField(max_length=32)
    found = models.BooleanField(default=False)
    path = models.CharField(max_length=1024, blank=True)
    version = models.CharField(max_length=255, blank=True)
    tls_library = models.CharField(max_length=64, blank=True)
    tls_library_version = models.CharField(max_length=64, blank=True)
    tls12 = models.CharField(max_length=16, default="unknown")
    tls13 = models.CharField(max_length=16, default="unknown")
    evidence = models.JSONField(default=list, blank=True)
    ldd_ssl = models.TextField(blank=True)
    note = models.TextField(blank=True)  # English: only rows older than ``notes`` have it
    notes = models.JSONField(default=list, blank=True)  # Texts, said when shown
    usable = models.BooleanField(default=True)
    duration_s = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="one_result_per_key")]
        verbose_name = _("probe result")
        verbose_name_plural = _("probe results")

    @property
    def note_shown(self) -> str:
        """The notes in the reader's language; an older row's English note as stored."""
        return "; ".join(said(self.notes)) if self.notes else self.note


class TestSend(Job):
    """One test mail through one mail command, from click to final state."""

    __test__ = False  # not a pytest test class

    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL)
    account_name = models.CharField(max_length=100)
    command = models.CharField(max_length=32, db_index=True)
    recipient = models.CharField(max_length=254)
    step = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True)  # in English (the panel's own: in its reader's words)
    reason_code = models.CharField(max_length=32, blank=True)  # transports' name of the reason
    # The reason as transports gave it (Text.to_dict()): message id and the values of the
    # time, such as the host and port it was sent to. Empty on rows older than it.
    reason_text = models.JSONField(default=dict, blank=True)
    detail = models.TextField(blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    transcript = models.TextField(blank=True)
    tls_version = models.CharField(max_length=32, blank=True)
    verified = models.BooleanField(null=True)
    delivered = models.BooleanField(null=True)
    warnings = models.JSONField(default=list, blank=True)  # [Text.to_dict()]; older: [str]
    suggestion_text = models.JSONField(default=dict, blank=True)  # Text.to_dict(): what to do
    suggestion_action = models.CharField(max_length=32, blank=True)  # the one-click, if any
    # A one-click retry: the mode or sender tried instead of the account's ("": its own).
    mode_tried = models.CharField(max_length=16, blank=True)
    sender_tried = models.CharField(max_length=254, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    test_id = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    batch = models.UUIDField(null=True, blank=True, db_index=True)
    language = models.CharField(max_length=8, default="de")
    # Scheduled: the health check's (health_check.py), not a click.
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    TOOL_WORDS = ("reason", "reason_text", "detail", "transcript", "warnings")

    class Meta(Job.Meta):
        verbose_name = _("test mail")
        verbose_name_plural = _("test mails")
        constraints = [
            # Two clicks never send two mails at once through the same command (of one
            # server: two servers may test the same account side by side).
            models.UniqueConstraint(
                fields=["server", "account", "command"],
                condition=Q(state__in=["queued", "running"]),
                name="one_active_send_per_command",
            )
        ]

    def __str__(self) -> str:
        return f"{self.command} → {self.recipient} ({self.state})"

    @staticmethod
    def outcome(result) -> dict:
        """The columns a transport's ``SendResult`` fills. Reason and warnings are kept as
        transports gave them (message id and parameters): pages say them in the language
        of whoever reads, with the values of this send."""
        return {
            "state": State.of(result),
            "step": result.step.value,
            "reason": str(result.reason),
            "reason_code": result.reason_code,
            "reason_text": result.reason.to_dict(),
            "detail": result.detail,
            "exit_code": result.exit_code,
            "transcript": result.transcript,
            "tls_version": result.tls_version or "",
            "verified": result.verified,
            "delivered": result.delivered,
            "warnings": [w.to_dict() for w in result.warnings],
            "duration_s": result.duration_s,
            "suggestion_text": result.suggestion.to_dict() if result.suggestion else {},
            "suggestion_action": result.action if result.suggestion else "",
        }

    def target(self, account: Account, password: str) -> Target:
        """The account's target, with the mode or sender of a one-click retry."""
        target = account.target(password, self.recipient)
        changes = {"mode": Mode(self.mode_tried)} if self.mode_tried else {}
        if self.sender_tried:
            changes["sender"] = self.sender_tried
        return dataclasses.replace(target, **changes) if changes else target

    @property
    def retry_offer(self) -> dict | None:
        """The one-click retry its failure suggests: the other mode, or the login as
        sender (when the login is an address and not the sender already); else None."""
        account = self.account
        if self.active or self.state != State.FAILED or account is None:
            return None
        if self.suggestion_action == "switch_mode":
            current = self.mode_tried or account.effective_mode
            other = Mode.STARTTLS if current == Mode.SMTPS else Mode.SMTPS
            return {"try": "mode", "value": other.value, "label": MODE_LABELS[other]}
        if self.suggestion_action == "use_account_sender":
            login = account.username
            if "@" in login and login != (self.sender_tried or account.sender):
                return {"try": "sender", "value": login, "label": login}
        return None

    @property
    def mode_tried_label(self) -> str:
        return str(MODE_LABELS[Mode(self.mode_tried)]) if self.mode_tried else ""

    @property
    def adoptable(self) -> dict | None:
        """A retry that passed with a mode or sender the account does not have yet: what
        "save it for the account" would change; else None."""
        account = self.account
        if account is None or self.state not in (State.PASSED, State.WARNING):
            return None
        if self.mode_tried and self.mode_tried != account.effective_mode:
            return {"field": "mode", "value": self.mode_tried,
                    "label": MODE_LABELS[Mode(self.mode_tried)]}  # fmt: skip
        if self.sender_tried and self.sender_tried != account.sender:
            return {"field": "sender", "value": self.sender_tried, "label": self.sender_tried}
        return None

    @property
    def entry(self) -> Entry | None:
        return BY_KEY.get(self.command)

    @property
    def explanation(self) -> str:
        """The reason in the reader's language, with the values of the time it was sent;
        an older row's (or the panel's own) as it was stored."""
        return say(self.reason_text or self.reason)

    @property
    def suggestion(self) -> str:
        """What to do about the failure, in the reader's language, with the values of
        the time it was sent (transports' one table); "" for a pass or an older row."""
        return say(self.suggestion_text) if self.suggestion_text else ""

    @property
    def warnings_shown(self) -> list[str]:
        return said(self.warnings)

    @property
    def delivery(self) -> str:
        """What the local relay did with the message, for the postfix and exim rows:
        delivered, deferred, bounced, still_queued, unverified; "" for other commands."""
        if self.delivered:
            return "delivered"
        if self.reason_code == "still_queued":
            return "still_queued"
        if self.delivered is False:
            return "bounced" if self._bounced else "deferred"
        if self.reason_code in UNVERIFIED_CODES:
            return "unverified"
        return ""

    @property
    def _bounced(self) -> bool:
        msgid = self.reason_text.get("msgid") if self.reason_text else None
        if msgid is None:  # a row older than reason_text: its English says it
            return self.reason.startswith("bounced")
        return msgid == BOUNCED_BY

    @property
    def delivery_label(self) -> str:
        return str(DELIVERY.get(self.delivery, ""))

    @property
    def command_label(self) -> str:
        entry = self.entry
        return say(entry.label) if entry else self.command

    @classmethod
    def latest_per_command(
        cls, account: Account | None, server: Server | None = None
    ) -> dict[str, TestSend]:
        """The newest test of ``account`` per command, on ``server`` (this machine if None)."""
        if account is None:
            return {}
        ids = (
            cls.objects.filter(account=account, server=server or Server.local())
            .values("command")
            .annotate(last=Max("id"))
            .values_list("last", flat=True)
        )
        return {s.command: s for s in cls.objects.filter(id__in=list(ids))}


class AuditEntry(models.Model):
    """Who changed what, and who sent which test. Append-only, with one exception: a burst
    of order moves by one user (``BURST_ACTIONS``, each within ``BURST`` of the last, with
    nothing logged between) is one entry, extended to the order it ended in."""

    class Action(models.TextChoices):
        ACCOUNT_CREATED = "account_created", _("Account added")
        ACCOUNT_CHANGED = "account_changed", _("Account changed")
        ACCOUNT_DELETED = "account_deleted", _("Account deleted")
        ACCOUNT_DEFAULT = "account_default", _("Default account set")
        ORDER_CHANGED = "order_changed", _("Order changed")
        ORDER_RESET = "order_reset", _("Order reset")
        COMMAND_TOGGLED = "command_toggled", _("Command enabled/disabled")
        PROBE_STARTED = "probe_started", _("Probe started")
        TEST_SENT = "test_sent", _("Test mail sent")
        KEY_ROTATED = "key_rotated", _("Key rotated")
        RELAY_CHECK = "relay_check", _("Relay check started")
        RELAY_APPLY = "relay_apply", _("Relay configuration confirmed")
        RELAY_APPLIED = "relay_applied", _("Relay configuration written")
        RELAY_NOT_APPLIED = "relay_not_applied", _("Relay configuration not written")
        OUTBOX_RETRY = "outbox_retry", _("Outbox message retried")
        OUTBOX_DISCARD = "outbox_discard", _("Outbox message discarded")
        OUTBOX_ALERT = "outbox_alert", _("Alert: mail works again")
        ADMIN_ADDRESS = "admin_address", _("Admin address set")
        BUNDLE_MADE = "bundle_made", _("Support bundle downloaded")
        BUNDLE_UPLOADED = "bundle_uploaded", _("Support bundle uploaded")
        BUNDLE_DELETED = "bundle_deleted", _("Support bundle deleted")
        HEALTH_ALERT = "health_alert", _("Alert: scheduled check failed")
        HEALTH_RECOVERED = "health_recovered", _("Alert: scheduled check passes again")

    BURST_ACTIONS = frozenset({Action.ORDER_CHANGED})
    BURST = timedelta(seconds=60)

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    target = models.CharField(max_length=255, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit entries are append-only")

    @classmethod
    def record(cls, user, action: str, target: str = "", detail: str = "") -> AuditEntry:
        real = real_user(user)
        burst = cls._burst_of(real, action, target[:255])
        if burst is not None:
            # Through the queryset: save() refuses to rewrite an entry, as it should.
            now = timezone.now()
            cls.objects.filter(pk=burst.pk).update(at=now, detail=detail)
            burst.at, burst.detail = now, detail
            return burst
        return cls.objects.create(
            user=real,
            username=real.get_username() if real else "system",
            action=action,
            target=target[:255],
            detail=detail,
        )

    @classmethod
    def _burst_of(cls, user, action: str, target: str) -> AuditEntry | None:
        """The newest entry, when this one only continues it (see the class's docstring)."""
        if user is None or action not in cls.BURST_ACTIONS:
            return None
        last = cls.objects.order_by("-at", "-id").first()
        if (
            last is not None
            and (last.user_id, last.action, last.target) == (user.pk, action, target)
            and timezone.now() - last.at <= cls.BURST
        ):
            return last
        return None


class RelayJob(Job):
    """One look at a relay (postfix or exim) for one account, or one write of its
    configuration followed by that look. Written by the relay tasks; the relay page
    shows the newest. Holds no secret: the generated configuration is stored masked.
    """

    class Kind(models.TextChoices):
        CHECK = "check", _("Check")
        APPLY = "apply", _("Apply")

    mta = models.CharField(max_length=16, db_index=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CHECK)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL)
    account_name = models.CharField(max_length=100)
    # The check whose configuration the administrator confirmed (apply only).
    confirmed = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The sentences in these (notes, differences, the apply's reason) are stored as
    # transports gave them, Text.to_dict(): said in the reader's language when shown.
    status = models.JSONField(default=dict, blank=True)  # RelayStatus.to_dict()
    differences = models.JSONField(default=list, blank=True)  # [Difference.to_dict()]
    config = models.JSONField(default=dict, blank=True)  # GeneratedConfig.to_dict(), masked
    config_error = models.TextField(blank=True)  # why no configuration could be made
    result = models.JSONField(default=dict, blank=True)  # ApplyResult.to_dict() (apply)
    error = models.TextField(blank=True)
    language = models.CharField(max_length=8, default="de")
    TOOL_WORDS = ("status", "differences", "config", "config_error", "result", "error")

    class Meta(Job.Meta):
        verbose_name = _("relay job")
        verbose_name_plural = _("relay jobs")
        constraints = [
            # One job per relay at a time: a check must not read half-written files.
            models.UniqueConstraint(
                fields=["server", "mta"],
                condition=Q(state__in=["queued", "running"]),
                name="one_active_job_per_relay",
            )
        ]

    def __str__(self) -> str:
        return f"{self.mta} {self.kind} ({self.state})"

    def state_after(self, *, applied: dict, differences: list, config_error: str) -> State:
        """The final state of the job: a write that failed is red; a relay that differs
        from the account, or an account no configuration can be made for, amber."""
        if self.kind == self.Kind.APPLY and not applied.get("ok"):
            return State.FAILED
        if differences or config_error:
            return State.WARNING
        return State.PASSED

    @property
    def differences_shown(self) -> list[dict]:
        """Each difference with its sentence in the reader's language (an older row's:
        its English one)."""
        return [{**d, "text": say(d.get("text") or d.get("en"))} for d in self.differences]

    @property
    def notes_shown(self) -> list[str]:
        return said([*self.status.get("notes", []), *self.config.get("notes", [])])

    @property
    def result_reason(self) -> str:
        return say(self.result.get("reason")) if self.result else ""

    @property
    def error_shown(self) -> str:
        return say(self.error)

    @property
    def config_error_shown(self) -> str:
        return say(self.config_error)

    @classmethod
    def latest(
        cls, mta: str, account: Account | None, server: Server | None = None
    ) -> RelayJob | None:
        """The newest job of ``account`` on ``server``'s relay (this machine's if None)."""
        if account is None:
            return None
        return cls.objects.filter(server=server or Server.local(), mta=mta,
                                  account=account).first()  # fmt: skip


# A finding's level (transports.findings.Level) as the badges colour it.
LEVEL_CSS = {"pass": "pass", "warn": "partly", "fail": "fail"}
LEVEL_SYMBOL = {"pass": "✓", "warn": "⚠", "fail": "✗"}


class Diagnosis(Job):
    """One look at an account's server (what it offers; no mail sent) or at its sender
    domain's DNS records, for a saved account or for the values typed into the account
    form. Written by the diagnosis task; the account's diagnosis page shows the newest.

    A password typed into the form for the check is kept here encrypted until the task
    has used it, then emptied: nothing else carries it to the worker.
    """

    class Kind(models.TextChoices):
        SERVER = "server", _("Server check")
        DNS = "dns", _("Sender domain (DNS)")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL)
    account_name = models.CharField(max_length=100, blank=True)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(null=True, blank=True)
    mode = models.CharField(max_length=16, blank=True)  # empty: detected, else by port
    ca_file = models.CharField(max_length=1024, blank=True)
    username = models.CharField(max_length=254, blank=True)
    password_encrypted = models.TextField(blank=True, editable=False)
    use_login = models.BooleanField(default=False)
    domain = models.CharField(max_length=253, blank=True)  # DNS: the sender's domain
    sender = models.CharField(max_length=254, blank=True)
    selectors = models.JSONField(default=list, blank=True)  # DNS: the DKIM selectors
    # ServerReport.to_dict() or DnsReport.to_dict(); the findings' sentences as data.
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    language = models.CharField(max_length=8, default="de")
    TOOL_WORDS = ("report", "error")

    class Meta(Job.Meta):
        verbose_name = _("diagnosis")
        verbose_name_plural = _("diagnoses")

    def __str__(self) -> str:
        return f"{self.kind} {self.host} ({self.state})"

    @property
    def findings(self) -> list[dict]:
        """The report's findings, each with its sentence in the reader's language."""
        return [{**f, "text": say(f.get("text_data") or f.get("text")),
                 "css": LEVEL_CSS.get(f.get("level"), "unknown"),
                 "symbol": LEVEL_SYMBOL.get(f.get("level"), "?")}
                for f in self.report.get("findings", [])]  # fmt: skip

    @property
    def error_shown(self) -> str:
        return say(self.error)

    @classmethod
    def latest(
        cls, account: Account | None, kind: str, server: Server | None = None
    ) -> Diagnosis | None:
        """The newest check of ``kind`` of ``account`` from ``server`` (this machine if None)."""
        if account is None:
            return None
        return cls.objects.filter(server=server or Server.local(), account=account,
                                  kind=kind).first()  # fmt: skip


class WorkerHeartbeat(OnServer):
    """Written by each Celery worker every few seconds; the pages of its server read it."""

    hostname = models.CharField(max_length=255, unique=True)
    pid = models.IntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    @staticmethod
    def fresh_since() -> timezone.datetime:
        return timezone.now() - timedelta(seconds=3 * settings.XMAILADMIN_HEARTBEAT_SECONDS)


# --- the outbox: messages of applications on this server ----------------------------


class Outbox(models.TextChoices):
    WAITING = "waiting", _("waiting")
    SENDING = "sending", _("being sent")
    DELIVERED = "delivered", _("delivered")
    BOUNCED = "bounced", _("bounced")
    DISCARDED = "discarded", _("discarded")


OUTBOX_CSS = {
    Outbox.WAITING: "partly",
    Outbox.SENDING: "running",
    Outbox.DELIVERED: "pass",
    Outbox.BOUNCED: "fail",
    Outbox.DISCARDED: "unknown",
}


class OutboxMessage(OnServer):
    """One message an application handed to xmail-sendmail (or the panel's mail backend).

    The message itself stays in the outbox folder until it is delivered; this row is what
    the delivery knows about it: recipients still to do, the schedule, the outcome.
    """

    spool_id = models.CharField(max_length=255, unique=True)
    state = models.CharField(
        max_length=16, choices=Outbox.choices, default=Outbox.WAITING, db_index=True
    )
    # "bounce", "alert": our own notices, never answered by another notice
    kind = models.CharField(max_length=16, default="message")
    sender = models.CharField(max_length=998)  # as the application gave it (-f, or user@host)
    recipients = models.JSONField(default=list)
    pending = models.JSONField(default=list)  # recipients not yet delivered nor bounced
    bounced_to = models.JSONField(default=list)
    subject = models.CharField(max_length=998, blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    size = models.PositiveIntegerField(default=0)
    submitted_by = models.CharField(max_length=64, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(default=0)  # rounds through the order
    next_try_at = models.DateTimeField(null=True, blank=True, db_index=True)
    delivered_by = models.CharField(max_length=32, blank=True)  # the command that did it
    reason = models.TextField(blank=True)  # English, the latest round's
    reason_text = models.JSONField(default=dict, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")

    def __str__(self) -> str:
        return f"{self.spool_id} ({self.state})"

    @property
    def css(self) -> str:
        return OUTBOX_CSS[Outbox(self.state)]

    @property
    def explanation(self) -> str:
        return say(self.reason_text or self.reason)

    @property
    def final(self) -> bool:
        return self.state in (Outbox.DELIVERED, Outbox.BOUNCED, Outbox.DISCARDED)

    @property
    def command_label(self) -> str:
        entry = BY_KEY.get(self.delivered_by)
        return say(entry.label) if entry else self.delivered_by


class DeliveryAttempt(models.Model):
    """One mail command tried for one recipient of an outbox message."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="tries")
    round = models.PositiveIntegerField()  # the message's attempts count at the time
    recipient = models.CharField(max_length=998)
    command = models.CharField(max_length=32, blank=True)  # "" when no command was tried
    ok = models.BooleanField(default=False)
    permanent = models.BooleanField(default=False)
    step = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True)
    reason_code = models.CharField(max_length=32, blank=True)
    reason_text = models.JSONField(default=dict, blank=True)
    detail = models.TextField(blank=True)
    transcript = models.TextField(blank=True)
    tls_version = models.CharField(max_length=32, blank=True)
    duration_s = models.FloatField(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    @property
    def explanation(self) -> str:
        return say(self.reason_text or self.reason)

    @property
    def command_label(self) -> str:
        entry = BY_KEY.get(self.command)
        return say(entry.label) if entry else self.command


# --- support bundles uploaded to be read here ------------------------------------------


class SupportBundle(models.Model):
    """A customer's support bundle (bundle.py), uploaded to be read in this panel: shown
    read-only, marked as the bundle of its server and time, never mixed with live rows."""

    uploaded_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    filename = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(default=0)
    server = models.CharField(max_length=255)  # the bundle's own word for its server
    created_at = models.DateTimeField()  # when the customer's panel made it
    schema = models.PositiveIntegerField()
    data = models.JSONField()

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        verbose_name = _("support bundle")
        verbose_name_plural = _("support bundles")

    def __str__(self) -> str:
        return f"{self.server} {self.created_at:%Y-%m-%d %H:%M}"


# --- the scheduled health check ----------------------------------------------------------


class HealthState(OnServer):
    """Where a server's scheduled check stands (health_check.py): since when it fails, and
    when the admin address was told, through which command. One row per server."""

    last_check = models.ForeignKey(
        TestSend, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    failing_since = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)  # the last alert that went out
    # The outcome of the last alert or recovery mail, as transports' sentences are kept
    # (Text.to_dict()): through which command it went, or why none could send it.
    alert_text = models.JSONField(default=dict, blank=True)
    alert_ok = models.BooleanField(null=True)
    recovered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)  # the dashboard's cache key reads it

    class Meta:
        verbose_name = _("health check state")
        verbose_name_plural = _("health check states")
        constraints = [models.UniqueConstraint(fields=["server"], name="one_health_per_server")]

    @property
    def alert_shown(self) -> str:
        return say(self.alert_text) if self.alert_text else ""
