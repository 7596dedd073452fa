"""manage.py account: SMTP accounts created, changed and listed over SSH, with the
account form's checks, its audit log, and the password only ever read from a file."""

from __future__ import annotations

import io
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from smtp_server import header_is

from transports.catalogue import transport_for
from transports.message import TEST_ID_HEADER, build_test_message
from xmailadmin.models import Account, AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "s3cr3t-Pässwort;$(echo nope)"  # shell characters on purpose


def run(*args: str) -> str:
    out = StringIO()
    call_command("account", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\nsecond line, not the password\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def create(password_file: Path, name: str = "Büro", *extra: str) -> str:
    return run(
        "set", name,
        "--host", "smtp.example.org",
        "--port", "587",
        "--user", "buero@example.org",
        "--password-file", str(password_file),
        "--from", "buero@example.org",
        "--to", "admin@example.org",
        *extra,
    )  # fmt: skip


def test_set_creates_the_account_with_the_password_stored_encrypted(password_file):
    out = create(password_file)

    account = Account.objects.get(name="Büro")
    assert (account.host, account.port, account.mode) == ("smtp.example.org", 587, "")
    assert (account.username, account.sender, account.recipient) == (
        "buero@example.org",
        "buero@example.org",
        "admin@example.org",
    )
    assert account.verify and account.effective_mode == "starttls"
    assert account.decrypt_password() == PASSWORD  # the first line, without its newline
    assert PASSWORD not in account.password_encrypted
    assert "account Büro created" in out and PASSWORD not in out
    # As on the pages: the first account is the default.
    assert account.is_default


def test_set_on_an_existing_account_changes_only_the_options_given(password_file, tmp_path):
    create(password_file, "Büro", "--ca-file", "", "--tls-name", "")
    before = Account.objects.get(name="Büro")

    out = run("set", "Büro", "--port", "465")

    after = Account.objects.get(name="Büro")
    assert after.port == 465 and after.effective_mode == "smtps"
    for field in ("host", "mode", "username", "sender", "recipient", "verify", "is_default"):
        assert getattr(after, field) == getattr(before, field), field
    assert after.password_encrypted == before.password_encrypted
    assert after.decrypt_password() == PASSWORD
    assert "account Büro saved" in out
    assert Account.objects.count() == 1


def test_password_file_dash_reads_the_password_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("von-stdin-pw\n"))
    run(
        "set", "Stdin",
        "--host", "smtp.example.org", "--port", "587", "--user", "u@example.org",
        "--password-file", "-", "--from", "u@example.org", "--to", "admin@example.org",
    )  # fmt: skip

    assert Account.objects.get(name="Stdin").decrypt_password() == "von-stdin-pw"


def test_a_new_password_replaces_the_old_one_and_is_not_printed(password_file, tmp_path):
    create(password_file)
    new = tmp_path / "new"
    new.write_text("n3u-Passwort", encoding="utf-8")  # no newline at the end: fine too

    out = run("set", "Büro", "--password-file", str(new))

    assert Account.objects.get(name="Büro").decrypt_password() == "n3u-Passwort"
    assert "n3u-Passwort" not in out


def test_a_new_account_names_every_missing_option_and_saves_nothing(password_file):
    with pytest.raises(CommandError) as raised:
        run("set", "Halb", "--host", "smtp.example.org", "--password-file", str(password_file))

    for option in ("--port", "--user", "--from", "--to"):
        assert option in str(raised.value)
    assert "--host" not in str(raised.value)
    assert not Account.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--host", "a;b"),
        ("--port", "0"),
        ("--port", "70000"),
        ("--from", "not-an-address"),
        ("--to", "admin@"),
        ("--user", "two words"),
        ("--ca-file", "relative/ca.pem"),
    ],
)
def test_an_invalid_value_is_refused_naming_the_option_and_nothing_is_saved(
    password_file, option, value
):
    with pytest.raises(CommandError, match=f"^{option}: .+"):
        create(password_file, "Büro", option, value)

    assert not Account.objects.exists()
    assert not AuditEntry.objects.exists()


def test_an_invalid_change_leaves_the_account_as_it_was(password_file):
    create(password_file)
    before = Account.objects.get(name="Büro")
    entries = AuditEntry.objects.count()

    with pytest.raises(CommandError, match="^--host: .*;"):
        run("set", "Büro", "--host", "a;b", "--port", "25")

    after = Account.objects.get(name="Büro")
    assert (after.host, after.port) == (before.host, before.port)
    assert after.updated_at == before.updated_at
    assert AuditEntry.objects.count() == entries


def test_an_unreadable_password_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(CommandError, match=f"cannot read the password file {missing}"):
        create(missing)
    assert not Account.objects.exists()


def test_a_password_with_a_control_character_is_refused(tmp_path):
    path = tmp_path / "password"
    path.write_text("pass\x00word\n", encoding="utf-8")
    with pytest.raises(CommandError, match="^--password-file: "):
        create(path)
    assert not Account.objects.exists()


def test_default_moves_the_default_flag(password_file):
    create(password_file, "Erstes")
    create(password_file, "Zweites", "--mode", "smtps", "--no-verify")
    assert Account.default().name == "Erstes"

    run("set", "Zweites", "--default")

    assert list(Account.objects.filter(is_default=True).values_list("name", flat=True)) == [
        "Zweites"
    ]
    entry = AuditEntry.objects.filter(target="Zweites").first()
    assert entry.action == AuditEntry.Action.ACCOUNT_CHANGED and "is_default" in entry.detail


def test_list_shows_the_facts_of_each_account_but_never_the_password(password_file):
    create(password_file, "Erstes")
    create(password_file, "Zweites", "--mode", "smtps", "--no-verify")

    lines = run("list").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("* Erstes  smtp.example.org:587  starttls (by port)  ")
    assert "user buero@example.org" in lines[0] and "to admin@example.org" in lines[0]
    assert "password stored" in lines[0]
    assert lines[1].startswith("  Zweites  smtp.example.org:587  smtps  ")
    assert "certificate not verified" in lines[1]

    raw = run("list", "--json")
    shown = json.loads(raw)
    assert [a["name"] for a in shown] == ["Erstes", "Zweites"]
    assert shown[1] == {
        "name": "Zweites",
        "host": "smtp.example.org",
        "port": 587,
        "mode": "smtps",
        "effective_mode": "smtps",
        "username": "buero@example.org",
        "sender": "buero@example.org",
        "recipient": "admin@example.org",
        "ca_file": "",
        "tls_name": "",
        "verify": False,
        "is_default": False,
        "has_password": True,
    }
    for account in Account.objects.all():
        assert account.password_encrypted not in raw
    assert PASSWORD not in raw and PASSWORD not in "\n".join(lines)


def test_a_save_from_the_command_line_is_in_the_audit_log(password_file):
    create(password_file)
    run("set", "Büro", "--to", "support@example.org")

    changed, created = AuditEntry.objects.filter(target="Büro")  # newest first
    assert created.action == AuditEntry.Action.ACCOUNT_CREATED
    assert changed.action == AuditEntry.Action.ACCOUNT_CHANGED
    assert created.username == changed.username == "system"
    assert created.user is None
    assert created.detail.endswith("(manage.py account set)") and "password" in created.detail
    assert changed.detail == "recipient (manage.py account set)"
    assert PASSWORD not in created.detail


@pytest.mark.parametrize(("port", "mode"), [("starttls_port", "auto"), ("smtps_port", "smtps")])
def test_a_mail_goes_out_through_the_account_the_command_made(
    smtp, mail_test_id, tmp_path, port, mode
):
    secret = tmp_path / "password"
    secret.write_text(smtp.password + "\n", encoding="utf-8")
    run(
        "set", "Testserver",
        "--host", smtp.host, "--port", str(getattr(smtp, port)), "--mode", mode,
        "--user", smtp.user, "--password-file", str(secret),
        "--from", "panel@example.org", "--to", "admin@example.org",
        "--ca-file", str(smtp.ca_file),
    )  # fmt: skip
    account = Account.objects.get(name="Testserver")

    target = account.target(account.decrypt_password(), account.recipient)
    message = build_test_message(
        sender=account.sender, recipient=account.recipient, command="python3",
        test_id=mail_test_id,
    )  # fmt: skip
    result = transport_for("python3").send(target, message)

    assert result.ok, result
    got = smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id))
    assert got.mail_from == "panel@example.org"
    assert got.rcpt_tos == ["admin@example.org"]
    assert got.auth_user == smtp.user
    assert got.mode == ("smtps" if mode == "smtps" else "starttls")


def test_mode_auto_and_verify_undo_an_explicit_mode_and_no_verify(password_file):
    create(password_file, "Büro", "--mode", "smtps", "--no-verify")

    out = run("set", "Büro", "--mode", "auto", "--verify")

    account = Account.objects.get(name="Büro")
    assert (account.mode, account.effective_mode, account.verify) == ("", "starttls", True)
    assert "warning" not in out
