"""``python`` / ``python3`` running the shipped ``scripts/send_mail.py``.

Their TLS is in the ``_ssl`` module, so detection asks the interpreter itself which
OpenSSL it loaded and where that module is.
"""

from __future__ import annotations

import functools
import json
import os

from .detection import Detection, apply_tls, failure, same_file
from .run import RunOutput, locate, run
from .scripted import ScriptTransport
from .texts import Text, gettext_noop
from .tlsinfo import CachedRun, RunFn, TlsLink, resolve_tls_library
from .versions import VersionInfo, parse_openssl_banner

# Python 2.7 and 3 alike; one JSON line so nothing else the interpreter prints confuses us.
_PYTHON_SCRIPT = """\
import json, sys
info = {"executable": sys.executable, "version": sys.version.split()[0]}
try:
    import ssl, _ssl
    info["ssl"] = ssl.OPENSSL_VERSION
    info["ssl_file"] = getattr(_ssl, "__file__", "")
except Exception as exc:
    info["ssl_error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(info))
"""


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


def interpreter_info(exe: str, run_fn: RunFn) -> tuple[dict[str, str] | None, RunOutput]:
    """What the interpreter says of itself and its ssl module, and the raw output."""
    out = run_fn([exe, "-c", _PYTHON_SCRIPT])
    line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith("{")), "")
    try:
        return json.loads(line), out
    except ValueError:
        return None, out


def _ssl_module(det: Detection, info: dict[str, str], run_fn: RunFn) -> None:
    if not info.get("ssl"):
        det.usable = False
        det.without_tls()
        det.add_note(
            Text(
                gettext_noop("this Python has no ssl module (%(error)s)"),
                {"error": info.get("ssl_error", "unknown")},
            )
        )
        return
    banner = parse_openssl_banner(info["ssl"])
    claim = VersionInfo(det.version, *(banner or (None, None)))
    ssl_file = info.get("ssl_file") or ""
    if os.path.isfile(ssl_file):
        link = resolve_tls_library(ssl_file, run_fn)
    else:
        link = TlsLink("unknown", evidence=["_ssl is built into the interpreter"])
    apply_tls(det, link, claim, f"_ssl module: {info['ssl']}")


class Python3Script(ScriptTransport):
    key = "python3"
    binary = "python3"
    script = "send_mail.py"

    def which(self) -> str | None:
        path = super().which()
        return real_interpreter(path, os.environ.get("PYENV_VERSION")) if path else None

    @classmethod
    def inspect(cls, det: Detection, exe: str, run_fn: RunFn) -> None:
        info, out = interpreter_info(exe, run_fn)
        if info is None:
            det.usable = False
            det.add_note(failure(out))
            return
        # A pyenv shim or a symlink: the interpreter that really runs is what it reports.
        det.path, det.version = info.get("executable") or exe, info.get("version")
        if not same_file(exe, det.path):
            det.add_note(Text(gettext_noop("via %(path)s"), {"path": exe}))
        _ssl_module(det, info, run_fn)


class PythonScript(Python3Script):
    """Whatever ``python`` is: 2.7 on older servers, python3 where python-is-python3."""

    key = "python"
    binary = "python"

    @classmethod
    def detect(cls, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
        run_fn = run_fn or CachedRun()
        det = super().detect(executable, run_fn=run_fn)
        python3 = locate(Python3Script.names()) if det.version else None
        other = interpreter_info(python3, run_fn)[0] if python3 else None
        if other and same_file(other.get("executable"), det.path):
            det.add_note(Text(gettext_noop("same interpreter as python3 (python-is-python3)")))
        return det
