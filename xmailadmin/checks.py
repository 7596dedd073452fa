"""System checks: say at start-up what will not work, without crashing."""

from __future__ import annotations

import os

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections


@checks.register()
def check_var_dir(app_configs, **kwargs) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    for name in ("secret_key", "fernet.key"):
        path = settings.VAR_DIR / name
        if path.exists() and path.stat().st_mode & 0o077:
            problems.append(
                checks.Warning(
                    f"{path} is readable by other users",
                    hint=f"chmod 600 {path}",
                    id="xmailadmin.W001",
                )
            )
    if not os.access(settings.VAR_DIR, os.W_OK):
        problems.append(
            checks.Error(f"{settings.VAR_DIR} is not writable", id="xmailadmin.E001")
        )
    return problems


@checks.register()
def check_transports(app_configs, **kwargs) -> list[checks.CheckMessage]:
    missing = []
    for module in ("transports.probe", "transports.catalogue", "transports.message"):
        try:
            __import__(module)
        except ImportError as exc:
            missing.append(f"{module} ({exc})")
    if missing:
        return [
            checks.Warning(
                "transports not complete: " + ", ".join(missing),
                hint="Probes and test sends fail with this reason until it is there.",
                id="xmailadmin.W002",
            )
        ]
    return []


@checks.register(checks.Tags.database)
def check_fernet_keys(app_configs, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Stored passwords no configured key decrypts (a lost var/fernet.key is made anew).

    A database check: ``migrate`` (run.sh) and ``check --database default`` run it.
    """
    from .crypto import readable
    from .models import Account

    problems: list[checks.CheckMessage] = []
    for alias in databases or []:
        try:
            if Account._meta.db_table not in connections[alias].introspection.table_names():
                continue  # before the first migrate
            stored = Account.objects.using(alias).exclude(password_encrypted="")
            names = [
                a.name
                for a in stored.only("name", "password_encrypted")
                if not readable(a.password_encrypted)
            ]
        except DatabaseError:
            continue
        if names:
            problems.append(
                checks.Warning(
                    f"the stored password of {len(names)} account(s) cannot be decrypted with "
                    f"the key(s) in {settings.FERNET_KEY_SOURCE}: {', '.join(names)}",
                    hint="Put the old key back (XMAILADMIN_FERNET_KEY=NEW,OLD or a further "
                    "line in var/fernet.key) or enter these passwords again in the panel.",
                    id="xmailadmin.W003",
                )
            )
    return problems
