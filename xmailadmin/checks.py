"""System checks: say at start-up what will not work, without crashing."""

from __future__ import annotations

import os

from django.conf import settings
from django.core import checks


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
    for module in ("transports.detection", "transports.registry", "transports.message"):
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
