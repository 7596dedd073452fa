"""Make sure a first administrator exists, and say how to log in.

    manage.py createadmin                       # admin "admin", password generated
    manage.py createadmin --role support --username support

A generated password is written to a 0600 file in var/ (``var/admin_password`` for
the first administrator) and printed once, but only to a terminal: output that goes
to a pipe or a log (run.sh under systemd writes to the journal) names the file instead.
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from xmailadmin.models import ADMIN_GROUP
from xmailadmin.roles import ROLE_NAMES, ensure_groups


class Command(BaseCommand):
    help = "Create the first administrator (or a support user) and print how to log in."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=None)
        parser.add_argument("--role", choices=sorted(ROLE_NAMES), default="admin")

    def handle(self, *args, username: str | None, role: str, **options) -> None:
        ensure_groups()
        group = Group.objects.get(name=ROLE_NAMES[role])
        users = get_user_model().objects
        if role == "admin" and username is None:
            existing = (
                users.filter(is_superuser=True, is_active=True).first()
                or users.filter(groups__name=ADMIN_GROUP, is_active=True).first()
            )
            if existing:
                self._print_existing(existing.get_username(), "admin")
                return
        username = username or role
        if users.filter(username=username).exists():
            self._print_existing(username, role)
            return
        password = secrets.token_urlsafe(12)
        path = self._password_file(username, role)
        # The file first: a user whose password went nowhere would be locked out.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        os.chmod(path, 0o600)
        user = users.create_user(username=username, password=password)
        if role == "admin":
            user.is_staff = True
            user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        user.groups.add(group)
        change = "change it after the first login (click the user name in the header)"
        if self.stdout.isatty():
            self.stdout.write(
                f"Created {group.name} '{username}'.\n"
                f"Login:    {username}\n"
                f"Password: {password}\n"
                f"(shown once; also in {path}, mode 0600; {change})"
            )
        else:
            self.stdout.write(
                f"Created {group.name} '{username}'.\n"
                f"Login:    {username}, password in {path} (0600)\n"
                f"(not printed: this output is no terminal and may be kept in a log; {change})"
            )

    def _password_file(self, username: str, role: str):
        if role == "admin" and username == "admin":
            return settings.VAR_DIR / "admin_password"
        if not username.replace("-", "").replace("_", "").isalnum():
            raise CommandError("username: letters, digits, - and _ only")
        return settings.VAR_DIR / f"{username}_password"

    def _print_existing(self, username: str, role: str) -> None:
        path = self._password_file(username, role)
        where = f"the password in {path} (unless changed since)" if path.exists() else (
            "the password set for it"
        )
        self.stdout.write(f"Login: {username} with {where}.")
