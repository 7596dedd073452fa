"""Which of the catalogue's mail commands this server has: each row's ``detect()``, all at once.

``detect(key)`` looks at one command, ``probe_all()`` at all of them in parallel. A bug in
one command's detection ends up in that row's note: it never takes the whole probe down.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .catalogue import BY_KEY, KEYS
from .detection import Detection
from .texts import Text, gettext_noop
from .tlsinfo import CachedRun, RunFn


def detect(key: str, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
    """Detect one catalogue command. ``executable`` replaces the lookup of its names.

    For postfix ``executable`` is the sendmail wrapper; for the mailx rows it must still
    identify itself as that mailx; for python it may be any interpreter (a python2 path).

    Raises ValueError only for a key that is not in the catalogue; anything going wrong
    with the command itself ends up in ``note``.
    """
    if key not in BY_KEY:
        raise ValueError(f"unknown mail command key: {key!r}")
    start = time.monotonic()
    try:
        det = BY_KEY[key].transport.detect(executable, run_fn=run_fn or CachedRun())
    except Exception as exc:  # a bug here must not take the whole probe page down
        det = Detection(key=key, found=False, usable=False)
        det.add_note(Text(gettext_noop("detection failed: %(error)s"), {"error": repr(exc)}))
    det.duration_s = round(time.monotonic() - start, 3)
    return det


def probe_all(keys: Sequence[str] | None = None, parallel: bool = True) -> list[Detection]:
    """Detect every key (default: the whole catalogue), in catalogue order.

    In parallel the probe takes about as long as the slowest single detection; identical
    subprocess calls (s-nail for both s-nail rows, python3 for the python row, ldd of a
    shared library, library versions) run once.
    """
    wanted = list(KEYS if keys is None else keys)
    run_fn = CachedRun()
    if not parallel or len(wanted) < 2:
        return [detect(key, run_fn=run_fn) for key in wanted]
    with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="detect") as pool:
        return list(pool.map(lambda key: detect(key, run_fn=run_fn), wanted))
