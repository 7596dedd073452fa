"""Relay backups are pruned, a password map's backup lives only while a rollback may
need it (0600 meanwhile), and switching accounts leaves no old credential behind: not
in the map, not in a compiled form of it, not in a backup. On a real private postfix
and exim (tests/transports/relay/conftest.py)."""

from __future__ import annotations

import dataclasses
import grp
import os
import subprocess
from pathlib import Path

import pytest
from relaycases import applied, make_message, mode_of, relay_account, relay_target
from smtp_server import TEST_ID_HEADER, SmtpTestServer, header_is

from transports.base import Mode
from transports.relay import exim as exim_module
from transports.relay import postfix as postfix_module
from transports.relay.exim import EXIM_GROUP
from transports.relay.files import (
    BACKUP_INFIX,
    KEEP_BACKUPS,
    backups_of,
    prune_backups,
    take_backup,
)

OTHER_USER = "other-user"
OTHER_PASSWORD = "0ther-Passw0rd-42"


@pytest.fixture
def other_server(pki, tmp_path):
    """A second account: another server with another user and password."""
    with SmtpTestServer(pki, tmp_path, user=OTHER_USER, password=OTHER_PASSWORD) as server:
        yield server


def seed_old_backups(path: Path, count: int, content: str = "old\n") -> list[str]:
    """``count`` backups of ``path`` from 2020, oldest first."""
    made = []
    for n in range(count):
        copy = Path(f"{path}{BACKUP_INFIX}20200101-000000" + (f".{n}" if n else ""))
        copy.write_text(content)
        made.append(str(copy))
    return made


def spy_on_checks(monkeypatch, module) -> list[dict[str, int]]:
    """Record, while the relay's checks of the new files run (a rollback may still come),
    the mode of every backup copy that exists."""
    seen: list[dict[str, int]] = []
    check = module.rejection

    def spying(backup, written, steps, timeout):
        seen.append({copy: mode_of(copy) for copy in backup.copies})
        return check(backup, written, steps, timeout)

    monkeypatch.setattr(module, "rejection", spying)
    return seen


# --- pruning ---------------------------------------------------------------------------


def test_take_backup_keeps_the_newest_of_each_file(tmp_path):
    path = tmp_path / "main.cf"
    path.write_text("now\n")
    old = seed_old_backups(path, 12)  # also .10 and .11: sorted as numbers, not as text

    backup = take_backup([str(path)], "20260101-120000", keep=3)

    kept = backups_of(str(path))
    assert kept == [old[-2], old[-1], backup.saved[str(path)]]
    assert Path(kept[-1]).read_text() == "now\n"
    assert prune_backups(str(path), keep=1) == kept[:2]


def test_apply_keeps_the_newest_backups_per_file(postfix, smtp):
    main_cf = postfix.config_dir / "main.cf"
    policy = postfix.config_dir / "tls_policy"
    policy.write_text("")
    old = {path: seed_old_backups(path, KEEP_BACKUPS + 2) for path in (main_cf, policy)}

    first = postfix.relay.apply(relay_account(smtp, Mode.SMTPS, postfix.ca_file), confirm=True)
    second = postfix.relay.apply(relay_account(smtp, Mode.STARTTLS, postfix.ca_file), confirm=True)

    assert first.ok and second.ok
    for path in (main_cf, policy):
        kept = backups_of(str(path))
        assert len(kept) == KEEP_BACKUPS
        assert kept[-2:] == [
            next(b for b in result.backups if b.startswith(f"{path}{BACKUP_INFIX}"))
            for result in (first, second)
        ]
        assert not any(os.path.exists(b) for b in old[path][: len(old[path]) - 3])


def test_exim_apply_keeps_the_newest_backups_per_file(exim, smtp):
    settings = exim.conf_dir / "update-exim4.conf.conf"
    old = seed_old_backups(settings, KEEP_BACKUPS + 1)

    result = exim.relay.apply(relay_account(smtp, Mode.SMTPS, exim.ca_file), confirm=True)

    assert result.ok, str(result.reason)
    kept = backups_of(str(settings))
    assert len(kept) == KEEP_BACKUPS and kept[-1] in result.backups
    assert not os.path.exists(old[0]) and not os.path.exists(old[1])


# --- the password map's backup ------------------------------------------------------


def test_the_sasl_map_backup_is_0600_during_apply_and_gone_after(postfix, smtp, monkeypatch):
    sasl = postfix.config_dir / "sasl_passwd"
    assert postfix.relay.apply(relay_account(smtp, Mode.SMTPS, postfix.ca_file), confirm=True).ok
    stale = seed_old_backups(sasl, 2, f"[old.example]:465 old:{smtp.password}\n")
    seen = spy_on_checks(monkeypatch, postfix_module)

    result = postfix.relay.apply(relay_account(smtp, Mode.STARTTLS, postfix.ca_file), confirm=True)

    assert result.ok, str(result.reason)
    during = {copy: mode for copy, mode in seen[0].items() if "sasl_passwd" in copy}
    assert len(during) == 1 and set(during.values()) == {0o600}  # it was there for a rollback
    assert backups_of(str(sasl)) == []  # ... and is gone, with the older ones
    assert not any(os.path.exists(copy) for copy in stale)
    assert not any("sasl_passwd" in b for b in result.backups)
    assert any("main.cf" in b for b in result.backups)  # the other files' backups stay
    assert mode_of(sasl) == 0o600


def test_exims_passwd_client_backup_is_0600_although_the_file_is_0640(exim, smtp, monkeypatch):
    passwd = exim.conf_dir / "passwd.client"
    assert exim.relay.apply(relay_account(smtp, Mode.SMTPS, exim.ca_file), confirm=True).ok
    assert mode_of(passwd) == 0o640
    seen = spy_on_checks(monkeypatch, exim_module)

    result = exim.relay.apply(relay_account(smtp, Mode.STARTTLS, exim.ca_file), confirm=True)

    assert result.ok, str(result.reason)
    during = {copy: mode for copy, mode in seen[0].items() if "passwd.client" in copy}
    assert len(during) == 1 and set(during.values()) == {0o600}
    assert backups_of(str(passwd)) == []
    assert mode_of(passwd) == 0o640
    assert grp.getgrgid(os.stat(passwd).st_gid).gr_name == EXIM_GROUP


def test_a_rollback_puts_passwd_client_back_as_it_was_and_drops_its_copy(exim, smtp):
    passwd = exim.conf_dir / "passwd.client"
    assert exim.relay.apply(relay_account(smtp, Mode.SMTPS, exim.ca_file), confirm=True).ok
    before = passwd.read_text()
    config = exim.relay.render(
        relay_account(smtp, Mode.STARTTLS, exim.ca_file, password="a-new-password")
    )
    macros = config.files[1]
    config.files[1] = dataclasses.replace(macros, content=macros.content + "no_such_option = 1\n")

    result = exim.relay.apply_config(config, confirm=True)

    assert not result.ok and result.rolled_back
    assert passwd.read_text() == before
    assert mode_of(passwd) == 0o640  # not the 0600 of its copy
    assert grp.getgrgid(os.stat(passwd).st_gid).gr_name == EXIM_GROUP
    assert backups_of(str(passwd)) == []
    assert result.backups and all(os.path.exists(b) for b in result.backups)
    assert not any("passwd.client" in b for b in result.backups)


# --- switching accounts -------------------------------------------------------------


def postmap_query(postfix, key: str, table: str) -> str | None:
    out = subprocess.run(
        ["postmap", "-c", str(postfix.config_dir), "-q", key, table],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def test_switching_accounts_leaves_no_old_credential_in_postfix(
    postfix, smtp, other_server, mail_test_id
):
    sasl = postfix.config_dir / "sasl_passwd"
    sasl.write_text("[other.example]:587 someone:else\n")
    first = applied(postfix, smtp, Mode.SMTPS)
    old_key = f"[{first.host}]:{first.port}"
    # A compiled form left by an earlier "postmap hash:" holds the old password too.
    subprocess.run(["postmap", "-c", str(postfix.config_dir), f"hash:{sasl}"], check=True)
    assert postmap_query(postfix, old_key, f"hash:{sasl}") == f"{smtp.user}:{smtp.password}"

    second = applied(postfix, other_server, Mode.STARTTLS)

    new_key = f"[{second.host}]:{second.port}"
    text = sasl.read_text()
    assert smtp.password not in text and old_key not in text
    assert text.splitlines() == [
        "[other.example]:587 someone:else",
        f"{new_key} {OTHER_USER}:{OTHER_PASSWORD}",
    ]
    for table in (f"texthash:{sasl}", f"hash:{sasl}"):
        assert postmap_query(postfix, old_key, table) is None
        assert postmap_query(postfix, new_key, table) == f"{OTHER_USER}:{OTHER_PASSWORD}"
    assert smtp.password.encode() not in Path(f"{sasl}.db").read_bytes()
    assert mode_of(f"{sasl}.db") == 0o600
    assert old_key not in (postfix.config_dir / "tls_policy").read_text()
    leftovers = [p for p in postfix.config_dir.iterdir() if smtp.password in _text(p)]
    assert leftovers == []  # no backup, no temporary file holds the old password
    # The new account is the live one.
    sent = postfix.relay.test_send(relay_target(second), make_message(mail_test_id))
    assert sent.ok, str(sent.reason)
    assert other_server.wait_for(header_is(TEST_ID_HEADER, mail_test_id)).auth_user == OTHER_USER


def test_switching_accounts_leaves_no_old_credential_in_exim(exim, smtp, other_server):
    passwd = exim.conf_dir / "passwd.client"
    passwd.write_text("other.example:someone:else\n")
    assert exim.relay.apply(relay_account(smtp, Mode.SMTPS, exim.ca_file), confirm=True).ok
    # The other account's server by name: exim keys passwd.client by host.
    account = relay_account(other_server, Mode.STARTTLS, exim.ca_file, host="localhost")

    result = exim.relay.apply(account, confirm=True)

    assert result.ok, str(result.reason)
    assert passwd.read_text().splitlines() == [
        "other.example:someone:else",
        f"localhost:{OTHER_USER}:{OTHER_PASSWORD}",
    ]
    assert mode_of(passwd) == 0o640
    leftovers = [p for p in exim.conf_dir.iterdir() if smtp.password in _text(p)]
    assert leftovers == []


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""
