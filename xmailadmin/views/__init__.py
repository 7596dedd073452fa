"""Function views, one module per page: validate, call services (which enqueue tasks), render.

Every view needs a login and a role (``common.panel_view``); HTMX requests get the
partial of the same template the full page uses (``"page.html#partial"``). The
names below are the ones ``xmailadmin/urls.py`` routes to.
"""

from __future__ import annotations

from .accounts import account_default, account_delete, account_edit, account_list
from .dashboard import (
    command_row,
    commands,
    dashboard,
    probe_start,
    probe_status,
    send_adopt,
    send_all,
    send_detail,
    send_one,
    send_retry,
)
from .history import history
from .order import order, order_move, order_reset, order_toggle
from .outbox import (
    outbox,
    outbox_admin_address,
    outbox_discard,
    outbox_message,
    outbox_retry,
    outbox_row,
    outbox_tries,
)
from .relay import (
    relay,
    relay_apply,
    relay_check_start,
    relay_check_status,
    relay_test,
    relay_test_status,
)

__all__ = [
    "account_default",
    "account_delete",
    "account_edit",
    "account_list",
    "command_row",
    "commands",
    "dashboard",
    "history",
    "order",
    "order_move",
    "order_reset",
    "order_toggle",
    "outbox",
    "outbox_admin_address",
    "outbox_discard",
    "outbox_message",
    "outbox_retry",
    "outbox_row",
    "outbox_tries",
    "probe_start",
    "probe_status",
    "relay",
    "relay_apply",
    "relay_check_start",
    "relay_check_status",
    "relay_test",
    "relay_test_status",
    "send_adopt",
    "send_all",
    "send_detail",
    "send_one",
    "send_retry",
]
