"""``python`` / ``python3`` running the shipped ``scripts/send_mail.py``."""

from __future__ import annotations

from .scripted import ScriptTransport


class Python3Script(ScriptTransport):
    key = "python3"
    binary = "python3"
    script = "send_mail.py"


class PythonScript(Python3Script):
    """Whatever ``python`` is: 2.7 on older servers, python3 where python-is-python3."""

    key = "python"
    binary = "python"
