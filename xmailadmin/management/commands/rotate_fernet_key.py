"""Re-encrypt every stored SMTP password with the newest Fernet key.

Rotation: put a new key in front of the old one (XMAILADMIN_FERNET_KEY=new,old
or a new first line in var/fernet.key), restart, run this command, then
remove the old key. ``--new-key`` prints a fresh key to use.
"""

from __future__ import annotations

from cryptography.fernet import Fernet
from django.core.management.base import BaseCommand
from django.db import transaction

from xmailadmin.crypto import rotate
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
            for account in Account.objects.select_for_update().exclude(password_encrypted=""):
                account.password_encrypted = rotate(account.password_encrypted)
                account.save(update_fields=["password_encrypted"])
                count += 1
        AuditEntry.record(None, AuditEntry.Action.KEY_ROTATED, detail=f"{count} account(s)")
        self.stdout.write(f"Re-encrypted {count} password(s) with the newest key.")
