"""Models, settings helpers and the management commands."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from xmailadmin.conf import ConfigError, envbool, envint, envsecret, secret_file
from xmailadmin.models import ADMIN_GROUP, Account, State, TestSend


def test_envbool_reads_the_usual_spellings(monkeypatch):
    for raw, expected in (("1", True), ("yes", True), ("off", False), ("", False)):
        monkeypatch.setenv("X_FLAG", raw)
        assert envbool("X_FLAG", not expected) is expected


def test_envbool_fails_loudly_on_nonsense(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ConfigError, match="X_FLAG"):
        envbool("X_FLAG", False)


def test_envint_checks_the_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "3")
    with pytest.raises(ConfigError, match="at least 10"):
        envint("X_NUM", 20, minimum=10)
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ConfigError, match="whole number"):
        envint("X_NUM", 20)


def test_envsecret_reads_a_file(monkeypatch, tmp_path):
    (tmp_path / "s").write_text("from-file\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "s"))
    assert envsecret("X_SECRET") == "from-file"


def test_a_secret_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "var" / "key"
    first = secret_file(path, lambda: "one")
    second = secret_file(path, lambda: "two")
    assert first == second == "one"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_panel_refuses_a_short_secret_key(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SECRET_KEY": "short", "XMAILADMIN_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_the_password_is_encrypted_at_rest(offline_account):
    from tests.panel.conftest import PASSWORD

    raw = Account.objects.filter(pk=offline_account.pk).values_list("password_encrypted", flat=True)
    assert PASSWORD not in raw[0]
    assert offline_account.decrypt_password() == PASSWORD


@pytest.mark.parametrize(("port", "mode"), [(465, "smtps"), (587, "starttls"), (25, "starttls")])
def test_the_mode_follows_the_port(port, mode):
    account = Account(port=port)
    assert account.effective_mode == mode and not account.mode_mismatch


def test_an_explicit_mode_against_the_port_is_a_mismatch():
    assert Account(port=587, mode="smtps").mode_mismatch
    assert not Account(port=465, mode="smtps").mode_mismatch


@pytest.mark.django_db
def test_only_one_account_is_the_default(offline_account):
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(
            name="Zwei", host="x.example", port=25, username="u", sender="a@b.de",
            recipient="a@b.de", is_default=True,
        )  # fmt: skip


@pytest.mark.django_db
def test_the_database_allows_one_active_test_per_command_and_account(offline_account):
    TestSend.objects.create(account=offline_account, command="curl", state=State.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        TestSend.objects.create(account=offline_account, command="curl", state=State.QUEUED)
    TestSend.objects.create(account=offline_account, command="curl", state=State.FAILED)


@pytest.mark.django_db
def test_createadmin_creates_the_first_administrator_once(settings, tmp_path):
    from django.contrib.auth import authenticate
    from django.http import HttpRequest

    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("createadmin", stdout=out)
    password = (tmp_path / "admin_password").read_text().strip()
    # Not a terminal: the output may end in a log that is kept, so only the file has it.
    assert password not in out.getvalue()
    assert "(0600)" in out.getvalue()
    assert stat.S_IMODE(os.stat(tmp_path / "admin_password").st_mode) == 0o600
    user = authenticate(HttpRequest(), username="admin", password=password)
    assert user and user.groups.filter(name=ADMIN_GROUP).exists()
    again = io.StringIO()
    call_command("createadmin", stdout=again)
    assert password not in again.getvalue()
    assert "admin_password" in again.getvalue()


@pytest.mark.django_db
def test_createadmin_makes_a_support_user(settings, tmp_path):
    from django.contrib.auth import get_user_model

    settings.VAR_DIR = tmp_path
    call_command("createadmin", "--role", "support", "--username", "helpdesk", stdout=io.StringIO())
    user = get_user_model().objects.get(username="helpdesk")
    assert user.has_perm("xmailadmin.run_checks")
    assert not user.has_perm("xmailadmin.change_settings")


def test_every_german_translation_is_there_and_compiled():
    import ast
    import gettext
    import re

    folder = Path(__file__).resolve().parents[2] / "xmailadmin/locale/de/LC_MESSAGES"
    po = (folder / "django.po").read_text()
    compiled = gettext.GNUTranslations((folder / "django.mo").open("rb"))
    entries = re.findall(
        r'\n(?:msgctxt ((?:".*"\n)+))?msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', po
    )
    assert len(entries) > 200

    def text(block: str) -> str:  # po strings use Python's escapes (\" \\ \n)
        return "".join(ast.literal_eval(line) for line in re.findall(r'".*"', block))

    for context_block, msgid_block, msgstr_block in entries:
        context, msgid, msgstr = text(context_block), text(msgid_block), text(msgstr_block)
        if msgid:
            assert msgstr, f"no German for {msgid!r}"
            found = compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)
            assert found == msgstr, f".mo is older than .po: {msgid!r}"
