"""Login throttling (django-axes), the login's error message and the password change page.

Failed logins are rows of the test database (axes' database handler), so each test
starts unlocked and no other test is ever locked out by these.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from panel_workers import REPO

LOCKED = "Zu viele fehlgeschlagene Anmeldungen."
WRONG = "Benutzername oder Passwort falsch."


def log_in(client, username: str, password: str, url: str | None = None, **extra):
    data = {"username": username, "password": password}
    return client.post(url or reverse("login"), data, **extra)


def logged_in(client) -> bool:
    return client.get(reverse("dashboard")).status_code == 200


def fail(client, times: int, username: str = "chef", **extra) -> None:
    for _ in range(times):
        log_in(client, username, "falsch-geraten", **extra)


# --- the message after a wrong password ----------------------------------------------


def test_a_wrong_password_says_user_name_or_password_wrong(client, panel_admin):
    response = log_in(client, "chef", "falsch-geraten")
    html = response.content.decode()
    assert response.status_code == 200
    assert WRONG in html
    assert "Bitte" not in html.split("<main", 1)[1].split("</form>", 1)[0]
    assert 'value="chef"' in html  # the user name stays filled in


def test_a_wrong_password_in_english_says_user_name_or_password_wrong(client, panel_admin):
    client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    assert "User name or password wrong." in log_in(client, "chef", "nope").content.decode()


# --- lockout ---------------------------------------------------------------------------


def test_five_wrong_passwords_lock_out_even_the_right_one(client, panel_admin):
    fail(client, 4)
    assert not logged_in(client)
    response = log_in(client, "chef", "falsch-geraten")
    assert response.status_code == 429
    response = log_in(client, "chef", "pw-chef")
    html = response.content.decode()
    assert response.status_code == 429
    assert LOCKED in html
    assert "für 15 Minuten gesperrt" in html
    assert "axes_reset_username chef" in html
    assert not logged_in(client)


def test_the_lock_is_in_english_after_the_switch(client, panel_admin):
    client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    fail(client, 5)
    html = log_in(client, "chef", "pw-chef").content.decode()
    assert "Too many failed logins." in html
    assert "locked for 15 minutes" in html


def test_four_wrong_passwords_do_not_lock_and_a_login_starts_counting_anew(client, panel_admin):
    fail(client, 4)
    assert log_in(client, "chef", "pw-chef").status_code == 302
    client.logout()
    fail(client, 4)
    assert log_in(client, "chef", "pw-chef").status_code == 302
    assert logged_in(client)


def test_the_lock_is_per_user_name_and_address(client, panel_admin, support_user):
    fail(client, 5)
    assert log_in(client, "support", "pw-support").status_code == 302  # other user, same address
    client.logout()
    assert log_in(client, "chef", "pw-chef", REMOTE_ADDR="127.0.0.2").status_code == 302
    client.logout()
    assert log_in(client, "chef", "pw-chef").status_code == 429


def test_the_django_admin_login_is_locked_too(client, panel_admin):
    panel_admin.is_staff = True
    panel_admin.save()
    url = reverse("admin:login")
    fail(client, 5, url=url)
    response = log_in(client, "chef", "pw-chef", url=url)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302  # still not logged in


def test_the_lock_ends_after_the_cool_off_time(client, panel_admin):
    fail(client, 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert log_in(client, "chef", "pw-chef").status_code == 302


def test_axes_reset_username_unlocks_a_user(client, panel_admin):
    fail(client, 5)
    call_command("axes_reset_username", "chef")
    assert log_in(client, "chef", "pw-chef").status_code == 302


def test_axes_reset_unlocks_everyone(client, panel_admin):
    fail(client, 5)
    call_command("axes_reset")
    assert log_in(client, "chef", "pw-chef").status_code == 302


def test_the_limits_come_from_the_environment(tmp_path):
    env = {
        **os.environ,
        "XMAILADMIN_LOGIN_FAILURES": "3",
        "XMAILADMIN_LOGIN_LOCK_MINUTES": "60",
        "XMAILADMIN_VAR_DIR": str(tmp_path),
    }
    code = "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.split() == ["3", "1:00:00"], result.stderr


# --- password change -------------------------------------------------------------------

NEW = "Neues-Passwort-für-2026"


def test_the_user_name_in_the_header_opens_the_password_change(admin_web):
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("password_change")}"' in html
    page = admin_web.get(reverse("password_change"))
    assert page.status_code == 200
    assert "Passwort ändern" in page.content.decode()
    assert "Altes Passwort" in page.content.decode()


def test_the_administrator_changes_the_password(client, panel_admin):
    assert log_in(client, "chef", "pw-chef").status_code == 302
    response = client.post(
        reverse("password_change"),
        {"old_password": "pw-chef", "new_password1": NEW, "new_password2": NEW},
    )
    assert response["Location"] == reverse("password_change_done")
    assert "Passwort geändert" in client.get(response["Location"]).content.decode()
    assert logged_in(client)  # this session stays
    client.logout()
    assert log_in(client, "chef", "pw-chef").status_code == 200
    assert log_in(client, "chef", NEW).status_code == 302


def test_a_wrong_old_password_changes_nothing(admin_web, panel_admin):
    response = admin_web.post(
        reverse("password_change"),
        {"old_password": "nicht-das-alte", "new_password1": NEW, "new_password2": NEW},
    )
    assert response.status_code == 200
    assert "Das alte Passwort war falsch." in response.content.decode()
    panel_admin.refresh_from_db()
    assert panel_admin.check_password("pw-chef")


def test_a_weak_new_password_is_refused_in_german(admin_web, panel_admin):
    response = admin_web.post(
        reverse("password_change"),
        {"old_password": "pw-chef", "new_password1": "1234", "new_password2": "1234"},
    )
    assert "zu kurz" in response.content.decode()
    panel_admin.refresh_from_db()
    assert panel_admin.check_password("pw-chef")


@pytest.mark.django_db
def test_the_password_change_needs_a_login(client):
    response = client.get(reverse("password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
