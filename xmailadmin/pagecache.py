"""The dashboard's HTML, reused while nothing it shows has changed.

Rendering fourteen command rows costs ~20 ms of CPU; one query tells whether
any row the page shows changed since the last render (the outbox's rows too, for
the outbox line). The cache key is that snapshot plus everything else the page
depends on: user and role, language, URL, worker and broker state, and the minute
(for "5 minutes ago", and for the outbox's ages and its last 24 hours).

The cached HTML holds a placeholder instead of the CSRF token; every response
gets the requesting user's own token. Each web process keeps its own copy
(Django's local-memory cache): the snapshot comes from the database, so no
process can serve a page older than the rows.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language

from .models import (
    ACTIVE_STATES,
    Account,
    HealthState,
    Outbox,
    OutboxMessage,
    ProbeRun,
    Server,
    TestSend,
    TransportSetting,
    WorkerHeartbeat,
    local_server_name,
)

CSRF_PLACEHOLDER = "csrf-placeholder-7f3a9c"
TTL_SECONDS = 120


@dataclass(frozen=True)
class Snapshot:
    values: tuple
    active: int  # queued or running rows: expire_stale() may have work
    newest_heartbeat: datetime | None


def _sql() -> str:
    send, run = TestSend._meta.db_table, ProbeRun._meta.db_table
    account, order = Account._meta.db_table, TransportSetting._meta.db_table
    beat, outbox = WorkerHeartbeat._meta.db_table, OutboxMessage._meta.db_table
    health = HealthState._meta.db_table
    active = ", ".join(f"'{s}'" for s in ACTIVE_STATES)
    return f"""SELECT
        (SELECT MAX(id) FROM {send}), (SELECT MAX(started_at) FROM {send}),
        (SELECT MAX(finished_at) FROM {send}),
        (SELECT MAX(id) FROM {run}), (SELECT MAX(started_at) FROM {run}),
        (SELECT MAX(finished_at) FROM {run}),
        (SELECT COUNT(*) FROM {account}), (SELECT MAX(updated_at) FROM {account}),
        (SELECT MAX(id) FROM {account} WHERE is_default),
        (SELECT COUNT(*) FROM {order}), (SELECT MAX(updated_at) FROM {order}),
        {_outbox_sql(outbox)},
        (SELECT MAX(updated_at) FROM {health}),
        (SELECT COUNT(*) FROM {send} WHERE state IN ({active}))
          + (SELECT COUNT(*) FROM {run} WHERE state IN ({active})),
        (SELECT MAX(seen_at) FROM {beat} WHERE server_id = {_server_sql()})"""


def _server_sql() -> str:
    # The shown server by its id, or this machine by its name: no query of its own.
    table = Server._meta.db_table
    return f"COALESCE(%s, (SELECT id FROM {table} WHERE name = %s))"


def _outbox_sql(table: str) -> str:
    """What the outbox line shows changes with these: a new message (the newest id), one
    leaving or coming back (the counts), a round ending with a new reason (a message
    starts or stops being sent, its attempts and next try change). Each reads the state
    index and the few open rows, never the delivered history."""
    waiting, sending = f"'{Outbox.WAITING}'", f"'{Outbox.SENDING}'"
    is_open = f"state IN ({waiting}, {sending})"
    return f"""(SELECT MAX(id) FROM {table}),
        (SELECT COUNT(*) FROM {table} WHERE state = {waiting}),
        (SELECT COUNT(*) FROM {table} WHERE state = {sending}),
        (SELECT COUNT(*) FROM {table} WHERE state = '{Outbox.BOUNCED}'),
        (SELECT MIN(submitted_at) FROM {table} WHERE {is_open}),
        (SELECT SUM(attempts) FROM {table} WHERE {is_open}),
        (SELECT MAX(next_try_at) FROM {table} WHERE {is_open})"""


def snapshot(server_id: int | None = None) -> Snapshot:
    """The rows' state; the newest heartbeat of the server ``server_id`` (this machine's
    if None)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql(), [server_id, local_server_name()])
        row = cursor.fetchone()
    newest = row[-1]
    if isinstance(newest, str):  # SQLite returns UTC as text from a raw query
        newest = parse_datetime(newest)
    if newest is not None and timezone.is_naive(newest):
        newest = timezone.make_aware(newest, UTC)
    return Snapshot(values=tuple(row[:-1]), active=row[-2] or 0, newest_heartbeat=newest)


def key(request: HttpRequest, snap: Snapshot, *parts: object) -> str | None:
    """None when the page must not come from the cache (a message is waiting)."""
    if len(get_messages(request)):
        return None
    raw = repr(
        (
            snap.values,
            request.user.pk,
            request.user.get_username(),
            get_language(),
            request.get_full_path(),
            int(time.time() // 60),
            *parts,
        )
    )
    return "page:" + hashlib.sha256(raw.encode()).hexdigest()


def response(request: HttpRequest, html: str) -> HttpResponse:
    return HttpResponse(html.replace(CSRF_PLACEHOLDER, get_token(request)))


def store(cache_key: str | None, html: str) -> None:
    if cache_key:
        cache.set(cache_key, html, TTL_SECONDS)


def fetch(cache_key: str | None) -> str | None:
    return cache.get(cache_key) if cache_key else None
