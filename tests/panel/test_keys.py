"""A lost or replaced Fernet key: the dashboard says so, rotation explains instead of
crashing, and start-up (migrate) warns."""

from __future__ import annotations

import os
import subprocess
import sys

from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks
from django.urls import reverse
from panel_workers import REPO, database_url

from tests.panel.conftest import PASSWORD

WARNING = "Die gespeicherten Passwörter lassen sich nicht entschlüsseln"


def test_the_dashboard_warns_when_the_key_is_lost(admin_web, offline_account, settings):
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]  # var/fernet.key made anew
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert WARNING in html
    assert "fehlt oder ist falsch" in html
    assert settings.FERNET_KEY_SOURCE in html
    assert "den alten Schlüssel wieder einsetzen" in html
    edit = reverse("account-edit", args=[offline_account.pk])
    assert f'<a href="{edit}">{offline_account.name}</a>' in html


def test_support_sees_the_warning_too(support_web, offline_account, settings):
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    html = support_web.get(reverse("dashboard")).content.decode()
    assert WARNING in html and offline_account.name in html


def test_the_dashboard_is_quiet_while_the_key_fits(admin_web, offline_account):
    assert WARNING not in admin_web.get(reverse("dashboard")).content.decode()


def test_an_old_key_kept_behind_a_new_one_is_no_problem(admin_web, offline_account, settings):
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *settings.FERNET_KEYS]
    assert WARNING not in admin_web.get(reverse("dashboard")).content.decode()


def test_rotate_fernet_key_explains_a_missing_key_without_a_traceback(
    transactional_db, offline_account, tmp_path
):
    stored = offline_account.password_encrypted
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "XMAILADMIN_"))}
    env = {
        **clean,
        "DATABASE_URL": database_url(),
        "XMAILADMIN_VAR_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "XMAILADMIN_FERNET_KEY": Fernet.generate_key().decode(),  # the old one is gone
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "rotate_fernet_key"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Nothing was re-encrypted" in result.stderr
    assert repr(offline_account.name) in result.stderr
    assert "XMAILADMIN_FERNET_KEY" in result.stderr and "put the old key back" in result.stderr
    offline_account.refresh_from_db()
    assert offline_account.password_encrypted == stored
    assert offline_account.decrypt_password() == PASSWORD


def test_migrate_warns_about_passwords_no_key_decrypts(offline_account, settings):
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    found = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    (warning,) = [m for m in found if m.id == "xmailadmin.W003"]
    assert offline_account.name in warning.msg


def test_migrate_is_quiet_while_the_key_fits(offline_account):
    found = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    assert not [m for m in found if m.id == "xmailadmin.W003"]
