"""transports/ runs over SSH on a server without the panel: it never imports Django."""

from __future__ import annotations

import subprocess
import sys


def test_transports_loads_without_django():
    code = (
        "import sys, transports.catalogue, transports.probe, transports.cli;"
        "sys.exit('django' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr or "transports imported django"
