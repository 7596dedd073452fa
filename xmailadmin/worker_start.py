"""At worker start: remove the private folders (with the SMTP password in a tool's rc
file) that a killed worker left behind.

Normally nothing is left: each send removes its folder, and when a worker process is
killed mid-send its guardian (``transports.run``) kills the tools and removes the
folders. This sweep is for the rest, e.g. a whole service killed at once, guardian
included: the folder names say which process made them, and only folders of
processes that are gone are removed. ``worker_init`` runs in the main process before
the pool starts, ``worker_process_init`` in every pool process, including one that
replaces a killed one.
"""

from __future__ import annotations

import logging

from celery.signals import worker_init, worker_process_init

from transports.secrecy import sweep_stale

log = logging.getLogger(__name__)


def sweep(**kwargs) -> list[str]:
    try:
        removed = sweep_stale()
    except OSError as exc:  # no usable base folder: the first send will say so
        log.warning("could not sweep private folders: %s", exc)
        return []
    if removed:
        log.warning("removed %d private folder(s) left by a killed worker", len(removed))
    return removed


worker_init.connect(sweep, weak=False, dispatch_uid="xmailadmin-sweep-worker-init")
worker_process_init.connect(sweep, weak=False, dispatch_uid="xmailadmin-sweep-process-init")
