"""s-nail's own facts: its resource-file quoting and which row an installed s-nail is."""

from __future__ import annotations

import shutil

import pytest
from detecting import need, stand_in
from mailcommands import RECIPIENT, SENDER, make_target
from smtp_server import TEST_ID_HEADER

from transports.base import Mode, Step, TargetError
from transports.message import build_test_message
from transports.probe import detect
from transports.s_nail import SNail, SNail15, major_version, rc_quote

needs_snail = pytest.mark.skipif(not shutil.which("s-nail"), reason="s-nail missing (CI has it)")


def test_rc_quote_keeps_every_printable_character_literal():
    assert rc_quote("a'b") == "'a'\\''b'"
    assert rc_quote("`id` $(id) \\") == "'`id` $(id) \\'"


@pytest.mark.parametrize("value", ["a\nset x=y", "a\rb", "a\0b"])
def test_rc_quote_refuses_what_would_end_the_line(value):
    with pytest.raises(TargetError):
        rc_quote(value)


@needs_snail
def test_the_row_of_another_major_version_is_not_installed_and_sends_nothing(smtp, mail_test_id):
    installed = major_version(shutil.which("s-nail"))
    assert installed in (14, 15)
    other = SNail15() if installed == 14 else SNail()
    message = build_test_message(
        sender=SENDER, recipient=RECIPIENT, command=other.key, test_id=mail_test_id
    )
    result = other.send(make_target(smtp, Mode.STARTTLS), message)
    assert not result.ok
    assert result.reason_code == "not_installed"
    assert result.step is Step.UNSUPPORTED
    assert f"version {installed}" in str(result.reason)
    assert not smtp.find(TEST_ID_HEADER, mail_test_id)


# --- detection: one s-nail, two rows ------------------------------------------------------


def test_snail_rows(probe):
    need("s-nail")
    snail14, snail15 = probe["snail14"], probe["snail15"]
    assert snail14.found and snail14.version.startswith("14.")
    assert snail14.path.endswith("/s-nail")
    assert not snail15.found
    assert snail15.note == f"installed s-nail is {snail14.version}"


def test_snail15_stand_in(tmp_path):
    fake = stand_in(tmp_path, "s-nail", "s-nail v15.0.0, 2026-01-01 (built for Linux)\n +tls")
    assert detect("snail15", fake).found
    row14 = detect("snail14", fake)
    assert not row14.found
    assert row14.note == "installed s-nail is 15.0.0"


def test_the_version_is_asked_once_per_binary_and_again_after_an_upgrade(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "s-nail"

    def install(version: str) -> None:
        fake.write_text(f"#!/bin/sh\necho x >> {calls}\necho 's-nail v{version}, 2026'\n")
        fake.chmod(0o755)

    install("14.9.24")
    assert [major_version(str(fake)) for _ in range(3)] == [14, 14, 14]
    assert calls.read_text().count("x") == 1  # one process for three sends
    install("15.0.1-upgraded")  # replaced in place: another size and time
    assert major_version(str(fake)) == 15
    assert calls.read_text().count("x") == 2
