"""msmtp's own facts: its version line and library, and a command line that carries
every setting except the password, which msmtp reads from a 0600 file."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from transports.base import Mode, Target
from transports.msmtp import Msmtp, parse_msmtp_version
from transports.secrecy import private_dir


def test_the_installed_msmtp_names_its_version_and_library():
    exe = shutil.which("msmtp")
    if exe is None:
        pytest.skip("msmtp is not installed (scripts/setup.sh test installs it)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout

    info = parse_msmtp_version(out)

    assert info.version and info.version[0].isdigit()
    assert info.library in ("GnuTLS", "OpenSSL")


def test_a_version_text_without_a_library_line_has_no_library():
    assert parse_msmtp_version("msmtp version 1.6.6\n").library is None
    assert parse_msmtp_version("").version is None


@pytest.mark.parametrize("mode", [Mode.SMTPS, Mode.STARTTLS])
def test_the_command_line_holds_no_password_and_the_file_is_private(mode):
    target = Target(
        host="127.0.0.1", port=2465, mode=mode, user="me@example.org",
        password="pw-in-a-file-only", sender="me@example.org", recipient="you@example.net",
    )  # fmt: skip
    with private_dir() as tmp:
        invocation = Msmtp().invocation("/usr/bin/msmtp", target, b"x", tmp)
        argv = " ".join(invocation.argv)
        password_file = argv.split("--passwordeval=cat ", 1)[1].split()[0]

        assert "pw-in-a-file-only" not in argv
        assert stat.S_IMODE(os.stat(password_file).st_mode) == 0o600
        with open(password_file, encoding="utf-8") as fh:
            assert fh.read() == "pw-in-a-file-only"
    assert f"--tls-starttls={'off' if mode is Mode.SMTPS else 'on'}" in argv
    assert "--auth=on" in argv and "--user=me@example.org" in argv
    assert not os.path.exists(password_file)  # gone with the send
