"""``python`` / ``python3`` running the shipped ``scripts/send_mail.py``."""

from __future__ import annotations

import functools
import os

from .run import run
from .scripted import ScriptTransport


@functools.lru_cache(maxsize=16)
def real_interpreter(path: str, pyenv_version: str | None = None) -> str:
    """The interpreter behind ``path``: pyenv puts bash shims on PATH, and starting
    Python through one costs ~100 ms CPU per send."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) == b"\x7fELF":
                return path
    except OSError:
        return path
    out = run([path, "-c", "import sys; print(sys.executable)"], timeout=15)
    exe = out.stdout.strip()
    return exe if out.returncode == 0 and os.path.isabs(exe) and os.access(exe, os.X_OK) else path


class Python3Script(ScriptTransport):
    key = "python3"
    binary = "python3"
    script = "send_mail.py"

    def which(self) -> str | None:
        path = super().which()
        return real_interpreter(path, os.environ.get("PYENV_VERSION")) if path else None


class PythonScript(Python3Script):
    """Whatever ``python`` is: 2.7 on older servers, python3 where python-is-python3."""

    key = "python"
    binary = "python"
