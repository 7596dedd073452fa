"""python's and python3's own facts: the TLS is in the interpreter's _ssl module."""

from __future__ import annotations

import os

from detecting import detect_stand_in, need

from transports.probe import detect


def test_python_rows(probe):
    python3 = probe["python3"]
    assert python3.found and python3.version.startswith("3.")
    assert python3.tls_library == "OpenSSL"
    assert any(e.startswith("_ssl module: OpenSSL") for e in python3.evidence)
    python = probe["python"]
    if not python.found:
        assert "python" in python.note
        return
    same = os.path.realpath(python.path) == os.path.realpath(python3.path)
    assert ("same interpreter as python3 (python-is-python3)" in python.note) is same


def test_python2_interpreter():
    python2 = "/root/.pyenv/versions/2.7.18/bin/python"
    if not os.path.exists(python2):
        python2 = need("python2")
    row = detect("python", python2)
    assert row.found and row.version.startswith("2.7")
    assert "python-is-python3" not in row.note
    assert row.tls_library in ("OpenSSL", "LibreSSL", "none")


def test_python_without_ssl_stand_in(tmp_path):
    row = detect_stand_in(
        tmp_path,
        "python3",
        '{"executable": "/opt/py/bin/python3", "version": "3.9.2", '
        '"ssl_error": "ImportError: No module named _ssl"}',
    )
    assert row.found and row.version == "3.9.2"
    assert not row.usable
    assert (row.tls_library, row.tls12, row.tls13) == ("none", "no", "no")
    assert "no ssl module" in row.note
