"""A real exim's configuration the Debian way: status, differences, render, apply, roll back."""

from __future__ import annotations

import dataclasses
import time

from german import german
from relaycases import make_message, mode_of, relay_account, relay_target

from transports.base import Mode


def settings_of(differences) -> set[str]:
    return {d.setting for d in differences}


def test_the_status_of_a_private_exim(exim):
    status = exim.relay.status()

    assert status.installed and status.configured
    assert status.version == "4.96"
    assert status.tls_library == "GnuTLS" and status.tls13 == "yes"
    assert status.running is False
    assert status.settings["dc_eximconfig_configtype"] == "internet"
    assert status.settings["DC_eximconfig_configtype"] == "internet"
    assert status.log_path == str(exim.mainlog)
    assert status.settings["spool_directory"] == str(exim.spool)


def test_compare_lists_what_a_direct_delivering_exim_lacks(exim, smtp):
    account = relay_account(smtp, Mode.SMTPS, exim.ca_file)

    differences = exim.relay.compare(exim.relay.status(), account)

    assert settings_of(differences) == {
        "dc_eximconfig_configtype",
        "dc_smarthost",
        "protocol",
        "hosts_require_tls",  # exim 4.96 already verifies certificates by default
        "hosts_require_auth",
        "tls_verify_certificates",
        "passwd.client",
    }
    for difference in differences:
        assert str(difference.text) and german(difference.text) != str(difference.text)
    smarthost = next(d for d in differences if d.setting == "dc_smarthost")
    assert f"set dc_smarthost='127.0.0.1::{smtp.smtps_port}'" in str(smarthost.text)


def test_compare_names_the_port_and_the_protocol(exim, smtp):
    assert exim.relay.apply(relay_account(smtp, Mode.STARTTLS, exim.ca_file), confirm=True).ok
    smtps = relay_account(smtp, Mode.SMTPS, exim.ca_file)

    differences = exim.relay.compare(exim.relay.status(), smtps)

    by_setting = {d.setting: d for d in differences}
    assert set(by_setting) == {"dc_smarthost", "protocol"}
    assert str(by_setting["dc_smarthost"].text) == (
        f"dc_smarthost is 127.0.0.1::{smtp.starttls_port}, account says port "
        f"{smtp.smtps_port}: set dc_smarthost='127.0.0.1::{smtp.smtps_port}'"
    )
    assert "REMOTE_SMTP_SMARTHOST_PROTOCOL = smtps" in str(by_setting["protocol"].text)
    assert "implizitem TLS" in german(by_setting["protocol"].text)


def test_after_apply_compare_finds_nothing(exim, smtp):
    account = relay_account(smtp, Mode.SMTPS, exim.ca_file)
    assert exim.relay.apply(account, confirm=True).ok

    assert exim.relay.compare(exim.relay.status(), account) == []


def test_compare_notices_another_password_and_a_stale_build(exim, smtp):
    account = relay_account(smtp, Mode.SMTPS, exim.ca_file)
    assert exim.relay.apply(account, confirm=True).ok
    settings = exim.conf_dir / "update-exim4.conf.conf"
    # Edited by hand, update-exim4.conf not run: exim still uses the old smarthost.
    settings.write_text(settings.read_text().replace(f"::{smtp.smtps_port}", "::2525"))
    changed = relay_account(smtp, Mode.SMTPS, exim.ca_file, password="a-new-password", port=2525)

    differences = exim.relay.compare(exim.relay.status(), changed)

    assert settings_of(differences) == {"DCsmarthost", "relay_auth_password"}
    assert "run update-exim4.conf" in str(differences[0].text)
    assert smtp.password not in repr(differences) and "a-new-password" not in repr(differences)


def test_render_gives_debian_settings_macros_and_a_secret_passwd_line(exim, smtp):
    account = relay_account(smtp, Mode.SMTPS, exim.ca_file)

    config = exim.relay.render(account)

    assert config.settings == {
        "dc_eximconfig_configtype": "smarthost",
        "dc_smarthost": f"127.0.0.1::{smtp.smtps_port}",
    }
    passwd, macros, require_auth = config.files
    assert passwd.secret and passwd.mode == 0o640 and passwd.group == "Debian-exim"
    assert passwd.content == f"127.0.0.1:{smtp.user}:{smtp.password}\n"
    assert macros.path.endswith("conf.d/main/000_localmacros")  # split configuration
    assert macros.content.splitlines() == [
        "REMOTE_SMTP_SMARTHOST_HOSTS_REQUIRE_TLS = *",
        f"REMOTE_SMTP_SMARTHOST_TLS_VERIFY_CERTIFICATES = {exim.ca_file}",
        "REMOTE_SMTP_SMARTHOST_TLS_VERIFY_HOSTS = *",
        "REMOTE_SMTP_SMARTHOST_PROTOCOL = smtps",
        ".ifdef XMAILADMIN_TEST_SEND",  # a test send's bounce only queues
        "queue_only = true",
        ".endif",
    ]
    # Debian's smarthost transport only tries the login: the file after it requires it.
    assert require_auth.path.endswith(
        "conf.d/transport/30_exim4-config_remote_smtp_smarthost_require_auth"
    )
    assert "hosts_require_auth = *" in require_auth.content
    assert smtp.password not in config.text(account.password)


def test_render_for_starttls_has_no_smtps_protocol(exim, smtp):
    config = exim.relay.render(relay_account(smtp, Mode.STARTTLS, exim.ca_file))

    assert "PROTOCOL" not in config.files[1].content


def test_apply_keeps_the_administrators_macros_and_other_passwords(exim, smtp):
    macros = exim.conf_dir / "conf.d/main/000_localmacros"
    macros.write_text("MAIN_LOG_SELECTOR = +all\n")
    passwd = exim.conf_dir / "passwd.client"
    passwd.write_text("other.example:someone:else\n")

    assert exim.relay.apply(relay_account(smtp, Mode.SMTPS, exim.ca_file), confirm=True).ok
    assert exim.relay.apply(relay_account(smtp, Mode.STARTTLS, exim.ca_file), confirm=True).ok

    text = macros.read_text()
    assert "MAIN_LOG_SELECTOR = +all" in text
    assert text.count("# BEGIN xmailadmin") == 1 and "PROTOCOL" not in text
    assert passwd.read_text().splitlines() == [
        "other.example:someone:else",
        f"127.0.0.1:{smtp.user}:{smtp.password}",
    ]
    assert mode_of(passwd) == 0o640


def test_apply_rolls_back_when_exim_rejects_the_configuration(exim, smtp, mail_test_id):
    good = relay_account(smtp, Mode.SMTPS, exim.ca_file)
    assert exim.relay.apply(good, confirm=True).ok
    watched = [exim.conf_dir / "update-exim4.conf.conf", exim.conf_dir / "passwd.client",
               exim.conf_dir / "conf.d/main/000_localmacros", exim.config_file]  # fmt: skip
    before = [path.read_text() for path in watched]
    config = exim.relay.render(relay_account(smtp, Mode.STARTTLS, exim.ca_file))
    macros = config.files[1]
    config.files[1] = dataclasses.replace(macros, content=macros.content + "no_such_option = 1\n")

    result = exim.relay.apply_config(config, confirm=True)

    assert not result.ok and result.rolled_back
    assert "no_such_option" in str(result.reason)
    assert [path.read_text() for path in watched] == before
    assert exim.relay.test_send(relay_target(good), make_message(mail_test_id)).ok


def test_apply_reloads_a_running_exim_daemon(exim, smtp):
    pid = exim.start_daemon()

    result = exim.relay.apply(relay_account(smtp, Mode.SMTPS, exim.ca_file), confirm=True)

    assert result.ok and result.action == "reloaded"
    assert exim.relay.status().running
    for _ in range(100):
        if "SIGHUP received" in exim.log():
            break
        time.sleep(0.05)
    assert f"pid {pid}: SIGHUP received" in exim.log()


def test_apply_refuses_without_confirmation(exim, smtp):
    before = (exim.conf_dir / "update-exim4.conf.conf").read_text()

    result = exim.relay.apply(relay_account(smtp, Mode.SMTPS, exim.ca_file))

    assert not result.ok and "not confirmed" in str(result.reason)
    assert (exim.conf_dir / "update-exim4.conf.conf").read_text() == before
