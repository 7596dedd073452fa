"""Re-encrypt every stored SMTP password with the newest Fernet key.

Rotation: put a new key in front of the old one (XMAILADMIN_FERNET_KEY=new,old
or a new first line in var/fernet.key), restart, run this command, then
remove the old key. ``--new-key`` prints a fresh key to use.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from xmailadmin.crypto import readable, rotate
from xmailadmin.models import Account, AuditEntry


class Command(BaseCommand):
    help = "Re-encrypt stored SMTP passwords with the first configured key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--new-key", action="store_true", help="only print a new key")

    def handle(self, *args, new_key: bool, **options) -> None:
        if new_key:
            self.stdout.write(Fernet.generate_key().decode())
            return
        count = 0
        with transaction.atomic():
            accounts = list(Account.objects.select_for_update().exclude(password_encrypted=""))
            unreadable = [a for a in accounts if not readable(a.password_encrypted)]
            if unreadable:
                raise CommandError(self._explain(unreadable))
            for account in accounts:
                account.password_encrypted = rotate(account.password_encrypted)
                account.save(update_fields=["password_encrypted"])
                count += 1
        AuditEntry.record(None, AuditEntry.Action.KEY_ROTATED, detail=f"{count} account(s)")
        self.stdout.write(f"Re-encrypted {count} password(s) with the newest key.")

    def _explain(self, unreadable: list[Account]) -> str:
        names = ", ".join(f"{a.name!r} (id {a.pk})" for a in unreadable)
        return (
            f"Nothing was re-encrypted: the stored password of {len(unreadable)} account(s) "
            f"cannot be decrypted with any configured key: {names}.\n"
            f"The key that encrypted it is missing from {settings.FERNET_KEY_SOURCE} "
            "(a lost or replaced var/fernet.key, or a key dropped too early).\n"
            "Either put the old key back behind the new one "
            "(XMAILADMIN_FERNET_KEY=NEW,OLD, or OLD as a further line in var/fernet.key), "
            "and run this command again (and restart the panel and the worker);\n"
            "or, if the old key is lost, enter the password of each account listed again "
            "in the panel (SMTP accounts, Edit) and run this command again."
        )
