"""The preferred order without a browser, for provisioning and support over SSH.

    manage.py order show [--json]
    manage.py order set KEY[,KEY...] [--confirm]

``set`` switches on exactly the commands named, in that order, first = used first; the
rest follow switched off, in their current order. As on the order page, making an
unsuitable command (mutt, Heirloom mailx) first needs a confirmation (``--confirm``),
and the change goes into the audit log.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from transports.catalogue import BY_KEY, KEYS
from xmailadmin.models import AuditEntry, TransportSetting
from xmailadmin.order import current_order, needs_confirmation, proposal_from, save_order


class Command(BaseCommand):
    help = "Show or set the preferred order of the mail commands."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        show = sub.add_parser("show", help="the order, first used first")
        show.add_argument("--json", action="store_true")
        change = sub.add_parser("set", help="these commands on, in this order; the rest off")
        change.add_argument("keys", help=f"comma-separated, of: {', '.join(KEYS)}")
        change.add_argument("--confirm", action="store_true", help="allow an unsuitable first")

    def handle(self, *args, action: str, **options) -> None:
        if action == "show":
            self._show(options["json"])
        else:
            self._set(options["keys"], options["confirm"])

    def _show(self, as_json: bool) -> None:
        rows = TransportSetting.ordered()
        if as_json:
            data = [{"key": r.key, "position": r.position, "enabled": r.enabled} for r in rows]
            self.stdout.write(json.dumps(data, indent=2))
            return
        for row in rows:
            mark = "on " if row.enabled else "off"
            self.stdout.write(f"{row.position:2d}  {mark}  {row.key}  ({BY_KEY[row.key].label})")

    def _set(self, keys_text: str, confirm: bool) -> None:
        wanted = [k.strip() for k in keys_text.split(",") if k.strip()]
        if unknown := [k for k in wanted if k not in BY_KEY]:
            raise CommandError(
                f"unknown mail command {', '.join(unknown)}; known: {', '.join(KEYS)}"
            )
        if len(set(wanted)) != len(wanted):
            raise CommandError("a mail command is named twice")
        old = current_order()
        rest = [k for k in old.order if k not in wanted]
        new = proposal_from(wanted + rest, wanted)
        assert new is not None  # a permutation of the catalogue by construction
        if (first := needs_confirmation(old, new)) and not confirm:
            raise CommandError(
                f"{first} is unsuitable as the first command ({BY_KEY[first].remark}); "
                "add --confirm to make it first anyway"
            )
        save_order(new)
        detail = " > ".join(new.order) + " (manage.py order set)"
        AuditEntry.record(None, AuditEntry.Action.ORDER_CHANGED, target=_("Order"), detail=detail)
        self.stdout.write(f"order saved: {' > '.join(wanted)} on; the rest off")
