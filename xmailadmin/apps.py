from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PanelConfig(AppConfig):
    name = "xmailadmin"
    label = "xmailadmin"
    verbose_name = _("Mail sending")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import checks, outbox_watch, signals, worker_start  # noqa: F401  (signals)
        from .roles import ensure_groups

        post_migrate.connect(ensure_groups, sender=self)
