"""Detection as every command shares it: the probe over the catalogue, the one lookup,
executable overrides, failing tools and shared subprocess calls.

Each command's own detection and version parsing is tested in its own file
(test_curl.py, test_mailx.py, test_python_script.py, ...).
"""

from __future__ import annotations

import doctest
import os
import shutil
import threading
import time
from collections.abc import Sequence

import pytest
from detecting import detect_stand_in, need

from transports import KEYS, curl, mailx, msmtp, mutt, openssl_s_client, s_nail
from transports.catalogue import CATALOGUE, transport_for
from transports.probe import detect
from transports.run import RunOutput, run
from transports.tlsinfo import CachedRun, plain_run

# --- probe_all on this machine ----------------------------------------------------------


def test_probe_all_covers_the_catalogue_in_order(probe):
    assert [d.key for d in probe["rows"]] == list(KEYS)
    for row in probe["rows"]:
        assert row.tls12 in ("yes", "partly", "no", "unknown")
        assert row.tls13 in ("yes", "partly", "no", "unknown")
        assert row.duration_s >= 0
        assert row.found or row.note, row.key


def test_probe_all_runs_in_parallel(probe):
    slowest = max(d.duration_s for d in probe["rows"])
    total = sum(d.duration_s for d in probe["rows"])
    assert probe["wall"] < slowest + 1.0
    assert probe["wall"] < total


@pytest.mark.parametrize("key", ["msmtp", "mutt", "mailx-mailutils"])
def test_gnutls_commands(probe, key):
    row = probe[key]
    if not row.found:
        pytest.skip(row.note)
    assert row.tls_library == "GnuTLS"
    assert row.tls_library_version and row.tls_library_version.startswith("3.")
    assert (row.tls12, row.tls13) == ("yes", "yes")
    assert row.version


@pytest.mark.parametrize("key", ["openssl", "snail14"])
def test_openssl_commands(probe, key):
    row = probe[key]
    if not row.found:
        pytest.skip(row.note)
    assert row.tls_library == "OpenSSL"
    assert row.tls_library_version.startswith("3.")
    assert (row.tls12, row.tls13) == ("yes", "yes")


def test_missing_tools_are_not_found(probe):
    for key, names in (("exim", ("exim4", "exim")), ("mailx-heirloom", ("heirloom-mailx",))):
        if any(shutil.which(n) or os.path.exists(f"/usr/sbin/{n}") for n in names):
            continue
        assert not probe[key].found
        assert probe[key].note


def test_every_row_names_the_class_that_sends_and_detects_it():
    for entry in CATALOGUE:
        assert entry.transport.key == entry.key
        assert transport_for(entry.key).key == entry.key


def test_found_means_sendable(probe):
    """The probe and the send find a command by the same lookup."""
    for entry in CATALOGUE:
        if entry.key.startswith("snail"):
            continue  # one s-nail, two rows: the send asks its version (test_s_nail.py)
        row, exe = probe[entry.key], transport_for(entry.key).which()
        assert (exe is not None) == row.found, entry.key
        if exe is not None:
            assert os.path.realpath(exe) == os.path.realpath(row.path), entry.key


def test_command_parsers_docstring_examples():
    modules = (curl, mailx, msmtp, mutt, openssl_s_client, s_nail)
    results = [doctest.testmod(module) for module in modules]
    assert sum(r.attempted for r in results) >= 15
    assert sum(r.failed for r in results) == 0


def test_unknown_key():
    with pytest.raises(ValueError):
        detect("sendmail-classic")
    with pytest.raises(KeyError):
        transport_for("sendmail-classic")


# --- executable overrides ---------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_nonexistent_executable_is_not_found(key, tmp_path):
    row = detect(key, str(tmp_path / "no-such-tool"))
    assert row.found is False
    assert row.note


# --- stand-ins for tools and libraries this machine lacks -------------------------------


def test_static_binary_as_a_tool():
    ldconfig = "/sbin/ldconfig"
    if not os.path.exists(ldconfig) or "statically" not in run(["ldd", ldconfig], timeout=5).text:
        pytest.skip("no statically linked /sbin/ldconfig here")
    row = detect("msmtp", ldconfig)  # `ldconfig --version` names no TLS library
    assert row.found and row.version is None
    assert row.tls_library == "unknown"
    assert "statically linked" in row.note


def test_failing_and_hanging_tools(tmp_path):
    row = detect_stand_in(tmp_path, "msmtp", "msmtp: cannot load libgnutls", exit_code=127)
    assert row.found and row.version is None
    assert "failed (exit 127): msmtp: cannot load libgnutls" in row.note

    hanging = tmp_path / "mutt"
    hanging.write_text("#!/bin/sh\nsleep 30\n")
    hanging.chmod(0o755)
    quick = CachedRun(lambda argv: run(argv, timeout=0.5, env={"LC_ALL": "C"}))
    start = time.monotonic()
    row = detect("mutt", str(hanging), run_fn=quick)
    assert time.monotonic() - start < 5
    assert row.found and "did not answer within" in row.note


# --- sharing subprocess calls -----------------------------------------------------------


def test_shared_calls_run_once():
    need("s-nail")
    calls: list[tuple[str, ...]] = []
    lock = threading.Lock()

    def counting(argv: Sequence[str]) -> RunOutput:
        with lock:
            calls.append(tuple(argv))
        return plain_run(argv)

    shared = CachedRun(counting)
    threads = [
        threading.Thread(target=detect, args=(key,), kwargs={"run_fn": shared})
        for key in ("snail14", "snail15", "python", "python3")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == len(set(calls))
    assert sum(1 for argv in calls if argv[0].endswith("s-nail") and "-Xversion" in argv) == 1
