"""A real postfix's configuration: status read back, differences, render, apply, roll back."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from german import german
from relaycases import (
    make_message,
    mode_of,
    relay_account,
    relay_target,
)

from transports.base import Mode
from transports.relay.files import BACKUP_INFIX
from transports.relay.procs import wait_gone

REPO = Path(__file__).resolve().parents[3]


def settings_of(differences) -> set[str]:
    return {d.setting for d in differences}


def test_the_status_of_a_private_postfix(postfix):
    status = postfix.relay.status()

    assert status.installed and status.configured and status.running
    assert status.version and status.version.startswith("3.")
    assert status.tls_library == "OpenSSL"
    assert status.tls13 == "yes"
    assert status.config_path == str(postfix.config_dir / "main.cf")
    assert status.log_path == str(postfix.maillog)
    assert status.settings["relayhost"] == ""
    assert status.settings["queue_directory"] == str(postfix.queue_dir)
    assert "password_digest" not in status.to_dict()


def test_compare_lists_what_an_unconfigured_postfix_lacks(postfix, smtp):
    account = relay_account(smtp, Mode.SMTPS, postfix.ca_file)

    differences = postfix.relay.compare(postfix.relay.status(), account)

    assert {
        "relayhost",
        "smtp_tls_wrappermode",
        "smtp_tls_security_level",
        "smtp_tls_policy_maps",
        "smtp_tls_CAfile",
        "smtp_sasl_auth_enable",
        "smtp_sasl_security_options",
        "smtp_sasl_password_maps",
    } <= settings_of(differences)
    for difference in differences:
        assert str(difference.text) and german(difference.text) != str(difference.text)
    relayhost = next(d for d in differences if d.setting == "relayhost")
    assert f"set relayhost = [127.0.0.1]:{smtp.smtps_port}" in str(relayhost.text)
    assert f"setzen Sie relayhost = [127.0.0.1]:{smtp.smtps_port}" in german(relayhost.text)


def test_compare_names_the_port_and_the_wrapper_mode(postfix, smtp):
    starttls = relay_account(smtp, Mode.STARTTLS, postfix.ca_file)
    assert postfix.relay.apply(starttls, confirm=True).ok
    smtps = relay_account(smtp, Mode.SMTPS, postfix.ca_file)

    differences = postfix.relay.compare(postfix.relay.status(), smtps)

    by_setting = {d.setting: d for d in differences}
    assert set(by_setting) == {"relayhost", "smtp_tls_wrappermode"}
    have = f"[127.0.0.1]:{smtp.starttls_port}"
    assert str(by_setting["relayhost"].text) == (
        f"relayhost is {have}, account says port {smtp.smtps_port}: "
        f"set relayhost = [127.0.0.1]:{smtp.smtps_port}"
    )
    assert str(by_setting["smtp_tls_wrappermode"].text) == (
        f"relayhost is {have}, account says port {smtp.smtps_port} with implicit TLS: "
        "set smtp_tls_wrappermode = yes"
    )
    wrappermode = german(by_setting["smtp_tls_wrappermode"].text)
    assert "setzen Sie smtp_tls_wrappermode = yes" in wrappermode


def test_after_apply_compare_finds_nothing(postfix, smtp):
    account = relay_account(smtp, Mode.SMTPS, postfix.ca_file)
    assert postfix.relay.apply(account, confirm=True).ok

    assert postfix.relay.compare(postfix.relay.status(), account) == []


def test_compare_notices_another_password_without_showing_either(postfix, smtp):
    assert postfix.relay.apply(relay_account(smtp, Mode.SMTPS, postfix.ca_file), confirm=True).ok
    changed = relay_account(smtp, Mode.SMTPS, postfix.ca_file, password="a-new-password")

    differences = postfix.relay.compare(postfix.relay.status(), changed)

    assert settings_of(differences) == {"relay_sasl_password"}
    text = repr(differences) + repr(postfix.relay.status().to_dict())
    assert smtp.password not in text and "a-new-password" not in text


def test_render_gives_the_settings_and_a_secret_map(postfix, smtp):
    account = relay_account(smtp, Mode.SMTPS, postfix.ca_file)

    config = postfix.relay.render(account)

    key = f"[127.0.0.1]:{smtp.smtps_port}"
    assert config.settings["relayhost"] == key
    assert config.settings["smtp_tls_wrappermode"] == "yes"
    assert config.settings["smtp_tls_security_level"] == "encrypt"
    assert config.settings["smtp_tls_CAfile"] == postfix.ca_file
    sasl, policy = config.files
    assert sasl.secret and sasl.mode == 0o600
    assert sasl.content == f"{key} {smtp.user}:{smtp.password}\n"
    assert not policy.secret and policy.content == f"{key} secure match=localhost\n"
    shown = config.text(account.password)
    assert smtp.password not in shown and "********" in shown
    assert smtp.password not in repr(config.to_dict(account.password))
    assert "smtp_tls_wrappermode = yes" in shown


def test_render_for_starttls_turns_wrapper_mode_off(postfix, smtp):
    config = postfix.relay.render(relay_account(smtp, Mode.STARTTLS, postfix.ca_file))

    assert config.settings["smtp_tls_wrappermode"] == "no"
    assert config.settings["smtp_tls_security_level"] == "encrypt"


def test_the_rendered_configuration_passes_postfix_check(postfix, smtp):
    account = relay_account(smtp, Mode.SMTPS, postfix.ca_file)
    assert postfix.relay.apply(account, confirm=True).ok

    check = subprocess.run(
        ["postfix", "-c", str(postfix.config_dir), "check"], capture_output=True, text=True
    )

    assert check.returncode == 0
    assert check.stdout + check.stderr == ""


def test_apply_keeps_timestamped_backups(postfix, smtp):
    main_cf = postfix.config_dir / "main.cf"
    before = main_cf.read_text()
    first = postfix.relay.apply(relay_account(smtp, Mode.SMTPS, postfix.ca_file), confirm=True)
    second = postfix.relay.apply(relay_account(smtp, Mode.STARTTLS, postfix.ca_file), confirm=True)

    assert first.ok and second.ok and second.action == "reloaded"
    main_backup = next(b for b in first.backups if b.startswith(f"{main_cf}{BACKUP_INFIX}"))
    assert Path(main_backup).read_text() == before
    # The password map's backup is not kept in clear once the apply went through.
    assert not any(Path(b).exists() for b in second.backups if "sasl_passwd" in b)
    assert mode_of(postfix.config_dir / "sasl_passwd") == 0o600
    assert len({*first.backups, *second.backups}) == len(first.backups) + len(second.backups)


def test_apply_keeps_other_entries_of_the_maps(postfix, smtp):
    sasl = postfix.config_dir / "sasl_passwd"
    sasl.write_text("[other.example]:587 someone:else\n")

    assert postfix.relay.apply(relay_account(smtp, Mode.SMTPS, postfix.ca_file), confirm=True).ok

    lines = sasl.read_text().splitlines()
    assert lines[0] == "[other.example]:587 someone:else"
    assert lines[1] == f"[127.0.0.1]:{smtp.smtps_port} {smtp.user}:{smtp.password}"


def test_apply_rolls_back_when_postfix_check_fails(postfix, smtp, mail_test_id):
    good = relay_account(smtp, Mode.SMTPS, postfix.ca_file)
    assert postfix.relay.apply(good, confirm=True).ok
    files = ("main.cf", "sasl_passwd", "tls_policy")
    before = {name: (postfix.config_dir / name).read_text() for name in files}
    broken = postfix.relay.render(relay_account(smtp, Mode.STARTTLS, postfix.ca_file))
    broken.settings["default_process_limit"] = "plenty"  # postfix check dies on this

    result = postfix.relay.apply_config(broken, confirm=True)

    assert not result.ok and result.rolled_back
    assert "postfix check" in str(result.reason) and "postfix check" in german(result.reason)
    assert {name: (postfix.config_dir / name).read_text() for name in files} == before
    # The old configuration is still the live one and still delivers.
    assert postfix.relay.test_send(relay_target(good), make_message(mail_test_id)).ok


def test_apply_refuses_without_confirmation(postfix, smtp):
    main_cf = postfix.config_dir / "main.cf"
    before = main_cf.read_text()

    result = postfix.relay.apply(relay_account(smtp, Mode.SMTPS, postfix.ca_file))

    assert not result.ok and "not confirmed" in str(result.reason)
    assert main_cf.read_text() == before


def test_apply_refuses_a_missing_ca_file(postfix, smtp):
    account = relay_account(smtp, Mode.SMTPS, "/nonexistent/ca.pem")

    result = postfix.relay.apply(account, confirm=True)

    assert not result.ok and "CA file" in str(result.reason)
    assert not (postfix.config_dir / "sasl_passwd").exists()


@pytest.fixture
def readable_transports():
    """A copy of transports/ that an unprivileged user can import (checkouts and pyenv
    often live under /root, 0700)."""
    base = Path(tempfile.mkdtemp(prefix="xmailadmin-nobody-"))
    try:
        shutil.copytree(REPO / "transports", base / "transports")
        for path in (base, *base.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield base
    finally:
        shutil.rmtree(base)


def test_apply_refuses_without_root_and_says_why(postfix, smtp, readable_transports):
    script = (
        "from transports.relay import PostfixRelay, RelayAccount\n"
        f"account = RelayAccount('127.0.0.1', {smtp.smtps_port}, 'u', 'pw')\n"
        f"result = PostfixRelay({str(postfix.config_dir)!r}).apply(account, confirm=True)\n"
        "print(result.ok, str(result.reason))\n"
    )
    # Debian's own python3: world-readable, the standard library is all transports needs.
    out = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         "/usr/bin/python3", "-c", script],
        capture_output=True, text=True, cwd="/", timeout=60,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(readable_transports)},
    )  # fmt: skip

    assert out.stdout.startswith("False"), out.stderr
    assert "needs root" in out.stdout
    assert not (postfix.config_dir / "sasl_passwd").exists()


def test_apply_starts_a_stopped_postfix(postfix, smtp, mail_test_id):
    subprocess.run(["postfix", "-c", str(postfix.config_dir), "stop"], capture_output=True)
    pid = postfix.relay.master_pid()
    assert pid is None or wait_gone([pid], 10)
    account = relay_account(smtp, Mode.STARTTLS, postfix.ca_file)

    result = postfix.relay.apply(account, confirm=True)

    assert result.ok and result.action == "started"
    assert postfix.relay.status().running
    assert postfix.relay.test_send(relay_target(account), make_message(mail_test_id)).ok
