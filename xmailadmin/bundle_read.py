"""Reading a support bundle: an uploaded file checked, then shown with the live pages.

``load`` takes the bytes of an uploaded file and returns the bundle or raises
BundleRefused with the reason in the reader's language: too big, not JSON, nested
deeper than any bundle is, not a bundle, from a schema this panel does not read, or
holding a format directive no bundle has (``%(x)999999999s`` would make a sentence of a
gigabyte when said). ``page_context`` turns a bundle into unsaved rows of the panel's
own models, so the overview's command table, the diagnosis blocks and the TLS matrix
are rendered by the very templates of live data, each value coerced to its column's
type on the way (a hostile value is shown as text or dropped, never run: the templates
escape everything, and a bundle page has no button).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from transports.catalogue import BY_KEY
from transports.tls_matrix import VERSIONS

from .bundle import (
    ACCOUNT_FIELDS,
    DIAGNOSIS_FIELDS,
    FORMAT,
    PROBE_FIELDS,
    RELAY_FIELDS,
    SCHEMA,
    SEND_FIELDS,
)
from .models import Account, AuditEntry, Diagnosis, ProbeResult, RelayJob, TestSend
from .models import TransportSetting as Setting

# The oldest schema this panel reads; ``UPGRADES[n]`` turns schema n into n + 1.
OLDEST_SCHEMA = 1
UPGRADES: dict[int, Any] = {}
MAX_DEPTH = 24  # a bundle's own nesting is 9 deep (a finding's text's parameters)
# A width or precision of four digits or more, or "*": no sentence of the panel has one.
_HUGE_FORMAT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d{4,}|\.\*|\.\d{4,}|\d*\.\d{4,})")


class BundleRefused(Exception):
    """The file is not a bundle this panel shows; the message says why."""


def check_size(size: int) -> None:
    limit = settings.XMAILADMIN_BUNDLE_MAX_BYTES
    if size > limit:
        raise BundleRefused(
            _("The file is %(size)s MB; a support bundle may have at most %(limit)s MB.")
            % {"size": f"{size / 1e6:.1f}", "limit": f"{limit / 1e6:.0f}"}
        )


def load(raw: bytes) -> dict[str, Any]:
    check_size(len(raw))
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise BundleRefused(_("The file is nested too deeply to be a support bundle.")) from None
    except (UnicodeDecodeError, ValueError):
        raise BundleRefused(_("The file is not a JSON support bundle (no valid JSON).")) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleRefused(_("The file is JSON, but no xmailadmin support bundle."))
    _check_tree(data)
    return _upgraded(data)


def _no_constant(name: str) -> None:
    raise ValueError(name)  # NaN and Infinity: no bundle has them


def _check_tree(data: dict) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BundleRefused(_("The file is nested too deeply to be a support bundle."))
        if isinstance(value, dict):
            if "msgid" in value and not (
                isinstance(value["msgid"], str) and isinstance(value.get("params", {}), dict)
            ):
                raise BundleRefused(_odd_sentence())
            stack.extend((v, depth + 1) for v in value.values())
            stack.extend((k, depth + 1) for k in value)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and "%" in value and _HUGE_FORMAT.search(value):
            raise BundleRefused(_odd_sentence())


def _odd_sentence() -> str:
    return _("The bundle holds a sentence in a form no xmailadmin writes.")


def _upgraded(data: dict) -> dict:
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise BundleRefused(_("The bundle names no schema version."))
    if schema > SCHEMA:
        raise BundleRefused(
            _("The bundle was made by a newer xmailadmin (schema %(schema)d); this panel reads "
              "schema %(oldest)d to %(newest)d. Update the panel to read it.")
            % {"schema": schema, "oldest": OLDEST_SCHEMA, "newest": SCHEMA}
        )  # fmt: skip
    if schema < OLDEST_SCHEMA:
        raise BundleRefused(
            _("The bundle was made by an old xmailadmin (schema %(schema)d); this panel reads "
              "schema %(oldest)d to %(newest)d. Make a new bundle on that server.")
            % {"schema": schema, "oldest": OLDEST_SCHEMA, "newest": SCHEMA}
        )  # fmt: skip
    while schema < SCHEMA:
        data = UPGRADES[schema](data)
        schema += 1
    if not isinstance(data.get("server"), str) or when(data.get("created_at")) is None:
        raise BundleRefused(_("The bundle does not say which server it is from and when."))
    return data


# --- a bundle as the panel's pages ------------------------------------------------------


def page_context(data: Mapping[str, Any]) -> dict[str, Any]:
    """What templates/panel/bundle.html shows of ``data`` (a loaded or collected bundle)."""
    from .views.dashboard import command_rows
    from .views.diagnosis import tls_grid_of

    probe = _dict(data.get("probe"))
    results = [_made(ProbeResult, r, PROBE_FIELDS) for r in _dicts(probe.get("results"))]
    probes = {r.key: r for r in results if r.key in BY_KEY}
    order = [_made(Setting, s, ("key", "position", "enabled")) for s in _dicts(data.get("order"))]
    order = sorted((s for s in order if s.key in BY_KEY), key=lambda s: s.position or 0)
    accounts = []
    for raw in _dicts(data.get("accounts")):
        account = _made(Account, raw, ACCOUNT_FIELDS)
        sends = {}
        for send in _dicts(raw.get("last_tests")):
            row = _made(TestSend, send, SEND_FIELDS)
            row.account = account
            sends[row.command] = row
        diagnosis = {k: _diagnosis(v) for k, v in _dict(raw.get("diagnosis")).items()}
        accounts.append({
            "account": account,
            "has_password": raw.get("has_password") is True,
            "rows": command_rows(order, probes, sends),
            "server": {"job": diagnosis.get("server"), "job_poll": ""},
            "dns": {"job": diagnosis.get("dns"), "job_poll": ""},
            "matrix": tls_grid_of(probes, sends, diagnosis.get("server")),
            "relays": [_relay(v) for v in _dict(raw.get("relay")).values() if isinstance(v, dict)],
        })  # fmt: skip
    outbox = _dict(data.get("outbox"))
    return {
        "bundle": {
            "server": str(data.get("server", "")),
            "created_at": when(data.get("created_at")),
            "schema": data.get("schema"),
            "language": str(data.get("language", "")),
            "product": _strings(data.get("product")),
            "system": _strings(data.get("system")),
            "worker": {**_dict(data.get("worker")),
                       "last_seen": when(_dict(data.get("worker")).get("last_seen"))},
            "probe_at": when(probe.get("finished_at")),
            "packages": [{"label": BY_KEY[r.key].label, "result": r,
                          "package": str(raw.get("package", "")),
                          "package_version": str(raw.get("package_version", ""))}
                         for r, raw in zip(results, _dicts(probe.get("results")), strict=True)
                         if r.key in BY_KEY],
            "order": [{"setting": s, "label": BY_KEY[s.key].label} for s in order],
            "outbox": {
                "counts": {k: _int(v) for k, v in _dict(outbox.get("counts")).items()},
                "oldest": when(outbox.get("oldest_waiting_since")),
                "bounced_24h": _int(outbox.get("bounced_24h")),
                "problems": [_problem(p) for p in _dicts(outbox.get("recent_problems"))],
            },
            "audit": [_made(AuditEntry, e, ("at", "username", "action", "target", "detail"))
                      for e in _dicts(data.get("audit"))],
        },
        "accounts": accounts,
        "versions": VERSIONS,
        "can_run": False,
        "can_change": False,
    }  # fmt: skip


def _diagnosis(value: Any) -> Diagnosis | None:
    if not isinstance(value, dict):
        return None
    row = _made(Diagnosis, value, DIAGNOSIS_FIELDS)
    report = dict(row.report)
    report["findings"] = _dicts(report.get("findings"))
    versions = _dict(report.get("tls_versions"))
    report["tls_versions"] = {v: versions[v] for v in VERSIONS
                              if v in versions and versions[v] in (True, False, None)}  # fmt: skip
    row.report = report
    return row


def _relay(value: dict) -> RelayJob:
    row = _made(RelayJob, value, RELAY_FIELDS)
    row.differences = _dicts(row.differences)
    row.status = {**row.status, "notes": _list(row.status.get("notes"))}
    row.config = {**row.config, "notes": _list(row.config.get("notes"))}
    return row


def _problem(value: dict) -> dict[str, Any]:
    reason = value.get("reason_text") if isinstance(value.get("reason_text"), dict) else None
    return {"state": str(value.get("state", "")), "attempts": _int(value.get("attempts")),
            "reason": reason or str(value.get("reason", "")),
            "submitted_at": when(value.get("submitted_at")),
            "delivered_by": str(value.get("delivered_by", ""))}  # fmt: skip


def _made(model: type[models.Model], data: Mapping[str, Any], fields: tuple[str, ...]):
    """An unsaved ``model`` row of ``data``'s ``fields``, each coerced to its column."""
    values = {}
    for name in fields:
        field = model._meta.get_field(name)
        if name in data:
            values[name] = _coerced(field, data[name])
    return model(**values)


def _coerced(field: models.Field, value: Any) -> Any:
    if isinstance(field, models.JSONField):
        return value if isinstance(value, dict | list) else field.get_default()
    if isinstance(field, models.DateTimeField):
        return when(value)
    if isinstance(field, models.BooleanField):
        return value if isinstance(value, bool) or (value is None and field.null) else None
    if isinstance(field, models.IntegerField | models.FloatField):
        return _number(value, float if isinstance(field, models.FloatField) else int)
    text = "" if value is None else str(value)
    if field.choices and text not in {str(choice) for choice, _label in field.flatchoices}:
        return field.get_default()
    return text


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return kind(value)
    except (OverflowError, ValueError):
        return None


def when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict]:
    return [v for v in _list(value) if isinstance(v, dict)]


def _int(value: Any) -> int:
    number = _number(value, int)
    return number if number is not None else 0


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _dict(value).items() if isinstance(v, str | int | float)}
