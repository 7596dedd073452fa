"""One time zone in every log line, with its offset: the panel's TIME_ZONE.

Django sets the process's TZ to TIME_ZONE when its settings load, so Python's logging
already writes local times in that zone, but without saying which (``06:44:30,230``).
gunicorn's master logs before any worker loads Django, in the machine's zone; Celery
gives its own handlers (the pool's, the tasks') formatters of its own. Here every one of
them gets the same clock: ISO 8601 local time with the offset.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime

from gunicorn import glogging


def zoned_time(record: logging.LogRecord, datefmt: str | None = None) -> str:
    """``2026-12-02 06:44:30.230+01:00``: the local time (TIME_ZONE) and its offset."""
    stamp = datetime.fromtimestamp(record.created).astimezone()
    return stamp.isoformat(sep=" ", timespec="milliseconds")


class ZonedFormatter(logging.Formatter):
    """The formatter of Django's LOGGING."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return zoned_time(record)


def zone_handlers(*loggers: logging.Logger) -> None:
    """Give the handlers another library set up (Celery's) the same timestamps."""
    for logger in loggers:
        for handler in logger.handlers:
            if handler.formatter is not None:
                handler.formatter.formatTime = zoned_time  # type: ignore[method-assign]


def use_panel_time_zone() -> None:
    """The process's local time becomes TIME_ZONE's, as in every process that has
    loaded Django."""
    from django.conf import settings

    os.environ["TZ"] = settings.TIME_ZONE
    time.tzset()


class GunicornLogger(glogging.Logger):
    """gunicorn's logger (``--logger-class``), in TIME_ZONE from the master's first
    line on. Its own formats already show the offset (``[... +0100]``)."""

    def __init__(self, cfg) -> None:
        use_panel_time_zone()
        super().__init__(cfg)
