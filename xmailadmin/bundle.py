"""The support bundle: everything support needs about this server, and no secret.

``collect()`` gathers it as JSON-ready data (schema in docs/bundle-schema.md): the
product and system versions, the probe with each command's package, the preferred
order, the accounts without password, each account's last test per command with its
transcript, its newest server and DNS checks and relay looks, the outbox in numbers
and the recent audit log. Sentences stay data (``Text.to_dict()``), so whoever reads
the bundle reads them in their own language, whatever the customer's was.

No secret leaves: every string (keys too) loses each account's password in every
spelling a tool may print (``secrecy.secret_forms``), the Fernet keys and Django's
secret key; ``dumps`` then refuses to write a bundle in which one of them is still
found. Passwords of panel users are stored only hashed, and hashes are never read.
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

from django.conf import settings
from django.utils import timezone, translation

from transports.catalogue import BY_KEY
from transports.secrecy import MASK, secret_forms
from transports.tlsinfo import package_version

from .models import (
    Account,
    AuditEntry,
    Diagnosis,
    Outbox,
    OutboxMessage,
    ProbeRun,
    RelayJob,
    Server,
    TestSend,
    TransportSetting,
    WorkerHeartbeat,
)

FORMAT = "xmailadmin-support-bundle"
SCHEMA = 1
AUDIT_ENTRIES = 100
OUTBOX_PROBLEMS = 20

ACCOUNT_FIELDS = ("name", "host", "port", "mode", "username", "sender", "recipient",
                  "ca_file", "tls_name", "verify", "is_default", "detected_mode",
                  "detected_for")  # fmt: skip
PROBE_FIELDS = ("key", "found", "path", "version", "tls_library", "tls_library_version",
                "tls12", "tls13", "evidence", "ldd_ssl", "note", "notes", "usable",
                "duration_s")  # fmt: skip
SEND_FIELDS = ("command", "state", "step", "reason", "reason_code", "reason_text", "detail",
               "exit_code", "transcript", "tls_version", "verified", "delivered", "warnings",
               "suggestion_text", "mode_tried", "sender_tried", "duration_s", "worker",
               "created_at", "finished_at")  # fmt: skip
DIAGNOSIS_FIELDS = ("kind", "state", "host", "port", "mode", "username", "use_login",
                    "domain", "sender", "selectors", "report", "error", "finished_at")  # fmt: skip
RELAY_FIELDS = ("mta", "kind", "state", "status", "differences", "config", "config_error",
                "result", "error", "finished_at")  # fmt: skip


class SecretLeft(Exception):
    """A secret was still found in a bundle about to be written: nothing is written."""


def collect(server: Server | None = None) -> dict[str, Any]:
    """The bundle of ``server`` (this machine by default), JSON-ready and scrubbed."""
    server = server or Server.local()
    now = timezone.now()
    accounts = list(Account.on(server))
    probe = ProbeRun.latest_finished(server)
    data = {
        "format": FORMAT,
        "schema": SCHEMA,
        "created_at": _time(now),
        "server": server.name,
        "language": translation.get_language() or settings.LANGUAGE_CODE,
        "product": {"name": "xmailadmin", "version": _product_version()},
        "system": _system(),
        "worker": _worker(server),
        # dpkg answers for this machine only: another server's packages stay unknown.
        "probe": _probe(probe, packages=server == Server.local()),
        "order": [{"key": s.key, "position": s.position, "enabled": s.enabled}
                  for s in TransportSetting.ordered(server)],  # fmt: skip
        "accounts": [_account(a, server) for a in accounts],
        "outbox": _outbox(server, now),
        "audit": [_row(e, ("at", "username", "action", "target", "detail"))
                  for e in AuditEntry.objects.all()[:AUDIT_ENTRIES]],  # fmt: skip
    }
    return scrub(data, _secrets(accounts))


def dumps(data: dict[str, Any], secrets: Iterable[str] | None = None) -> str:
    """The bundle as JSON text; SecretLeft if any secret is still in it."""
    text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True)
    check_clean(text, secrets_of_panel() if secrets is None else secrets)
    return text


def check_clean(text: str, secrets: Iterable[str]) -> None:
    """SecretLeft when ``text`` still holds a secret (the last line of defence: the HTML
    rendering is checked with it too)."""
    if any(secret in text for secret in secrets):
        raise SecretLeft("a secret is still in the bundle; nothing was written")


# --- what goes in -----------------------------------------------------------------


def _product_version() -> str:
    try:
        return metadata.version("xmailadmin")
    except metadata.PackageNotFoundError:  # run from the checkout, not installed
        return _pyproject_version()


def _pyproject_version() -> str:
    import tomllib

    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, ValueError):
        return ""


def _system() -> dict[str, str]:
    return {
        "os": _os_release().get("PRETTY_NAME", platform.system()),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "django": metadata.version("django"),
        "celery": metadata.version("celery"),
        "time_zone": settings.TIME_ZONE,
    }


def _os_release() -> dict[str, str]:
    values = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                name, _sep, value = line.strip().partition("=")
                values[name] = value.strip('"')
    except OSError:
        pass
    return values


def _worker(server: Server) -> dict[str, Any]:
    beat = WorkerHeartbeat.objects.filter(server=server).order_by("-seen_at").first()
    return {
        "last_seen": _time(server.last_seen),
        "alive": beat is not None and beat.seen_at >= WorkerHeartbeat.fresh_since(),
        "hostname": beat.hostname if beat else "",
    }


def _probe(run: ProbeRun | None, *, packages: bool) -> dict[str, Any] | None:
    if run is None:
        return None
    results = []
    for result in run.results.all():
        row = _row(result, PROBE_FIELDS)
        owned = None
        if packages and result.found and result.path:
            owned = package_version(result.path)
        row["package"], row["package_version"] = owned or ("", "")
        results.append(row)
    results.sort(key=lambda r: list(BY_KEY).index(r["key"]) if r["key"] in BY_KEY else 99)
    return {"finished_at": _time(run.finished_at), "trigger": run.trigger, "results": results}


def _account(account: Account, server: Server) -> dict[str, Any]:
    data = _row(account, ACCOUNT_FIELDS)
    data["effective_mode"] = account.effective_mode
    data["has_password"] = account.has_password
    sends = TestSend.latest_per_command(account, server)
    data["last_tests"] = [_row(sends[key], SEND_FIELDS) for key in BY_KEY if key in sends]
    data["diagnosis"] = {
        kind: _maybe(Diagnosis.latest(account, kind, server), DIAGNOSIS_FIELDS)
        for kind in Diagnosis.Kind.values
    }
    data["relay"] = {
        mta: _maybe(RelayJob.latest(mta, account, server), RELAY_FIELDS)
        for mta in ("postfix", "exim")
    }
    return data


def _outbox(server: Server, now: datetime) -> dict[str, Any]:
    rows = OutboxMessage.objects.filter(server=server)
    counts = Counter(rows.values_list("state", flat=True))
    waiting = rows.filter(state__in=(Outbox.WAITING, Outbox.SENDING))
    oldest = waiting.order_by("submitted_at", "id").first()
    problems = rows.exclude(state=Outbox.DELIVERED).exclude(reason_text={}, reason="")
    return {
        "counts": {state: counts.get(state, 0) for state in Outbox.values},
        "oldest_waiting_since": _time(oldest.submitted_at) if oldest else None,
        "bounced_24h": rows.filter(
            state=Outbox.BOUNCED, finished_at__gte=now - timedelta(hours=24)
        ).count(),
        # No subject and no addresses: what went wrong, not whom it was for.
        "recent_problems": [
            _row(m, ("state", "kind", "attempts", "reason", "reason_text", "submitted_at",
                     "delivered_by"))
            for m in problems.order_by("-submitted_at", "-id")[:OUTBOX_PROBLEMS]
        ],  # fmt: skip
    }


def _maybe(row: Any, fields: tuple[str, ...]) -> dict[str, Any] | None:
    return None if row is None else _row(row, fields)


def _row(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _value(getattr(row, name)) for name in fields}


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _time(value)
    return value


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


# --- what must not go in -------------------------------------------------------------


def _secrets(accounts: Iterable[Account]) -> list[str]:
    """Every spelling of every secret this panel holds, longest first."""
    found = set()
    for account in accounts:
        if not account.has_password:
            continue
        try:
            password = account.decrypt_password()
        except Exception:  # an unreadable password cannot be printed by any tool either
            continue
        found.update(secret_forms(account.username, password))
    found.update(k for k in (*settings.FERNET_KEYS, settings.SECRET_KEY) if k)
    found.update(_key_file())
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


def _key_file() -> list[str]:
    path = settings.VAR_DIR / "fernet.key"
    try:
        return [line.strip() for line in path.read_text().split() if line.strip()]
    except OSError:
        return []


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with each secret replaced by the mask, in keys and strings alike."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value


def secrets_of_panel() -> list[str]:
    """The secrets ``dumps`` and the HTML export check against."""
    return _secrets(Account.objects.all())

