"""The Celery app, configured from Django's settings (``CELERY_*``)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xmailadmin.settings")

app = Celery("xmailadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
