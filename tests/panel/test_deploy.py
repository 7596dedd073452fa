"""Production settings: `check --deploy`, HTTPS behind a proxy, the Content-Security-Policy,
and the first administrator's password kept out of logs."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from panel_workers import REPO, database_url

# What docs/panel.md ("Production") sets; everything else keeps its default.
PRODUCTION = {"XMAILADMIN_HTTPS": "1", "DJANGO_ALLOWED_HOSTS": "mail.example.org"}


def manage(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "XMAILADMIN_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=120, **kwargs,
    )  # fmt: skip


# --- check --deploy ------------------------------------------------------------------


def test_check_deploy_with_the_production_settings_reports_no_issues(tmp_path):
    env = {**PRODUCTION, "XMAILADMIN_VAR_DIR": str(tmp_path)}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_check_deploy_without_https_names_what_is_missing(tmp_path):
    env = {"XMAILADMIN_VAR_DIR": str(tmp_path)}
    result = manage("check", "--deploy", env=env)
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr


SHELL_REQUESTS = """
from django.test import Client
c = Client()
plain = c.get("/login/", HTTP_HOST="mail.example.org")
print("plain", plain.status_code, plain.get("Location", ""))
tls = c.get("/login/", HTTP_HOST="mail.example.org", HTTP_X_FORWARDED_PROTO="https")
print("tls", tls.status_code, tls.get("Strict-Transport-Security", ""))
print("cookie", tls.cookies["csrftoken"]["secure"])
"""


def test_with_https_the_panel_redirects_sends_hsts_and_secure_cookies(tmp_path):
    env = {**PRODUCTION, "XMAILADMIN_VAR_DIR": str(tmp_path)}
    result = manage("shell", "--no-imports", "-c", SHELL_REQUESTS, env=env)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["plain"] == "301 https://mail.example.org/login/", result.stderr
    assert lines["tls"] == "200 max-age=31536000; includeSubDomains; preload"
    assert lines["cookie"] == "True"


# --- Content-Security-Policy ----------------------------------------------------------


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def test_the_dashboard_sends_a_strict_content_security_policy(admin_web, offline_account):
    csp = policy(admin_web.get(reverse("dashboard")))
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"][0] == "'self'"
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in str(csp) and "'unsafe-eval'" not in str(csp)


def test_the_login_page_sends_the_policy_too(client, db):
    assert "default-src 'none'" in client.get(reverse("login"))["Content-Security-Policy"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.I)
HANDLER = re.compile(r"\son[a-z]+=\"([^\"]*)\"", re.I)


@pytest.mark.parametrize(
    "name",
    ["login", "dashboard", "accounts", "account-new", "order", "history", "relay", "password"],
)
def test_no_page_has_inline_code_the_policy_would_block(
    name, client, panel_admin, offline_account, worker_alive
):
    from xmailadmin.models import Account

    Account.objects.create(  # two accounts: the relay page gets its account select
        name="Zweitkonto", host="smtp2.example.org", port=465, username="zwei",
        sender="zwei@example.org", recipient="admin@example.org",
    )  # fmt: skip
    if name != "login":
        client.force_login(panel_admin)
    urls = {
        "relay": reverse("relay", args=["postfix"]),
        "password": reverse("password_change"),
    }
    response = client.get(urls.get(name) or reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_STYLE.search(html)
    allowed = policy(response)["script-src"]
    for code in HANDLER.findall(html):  # inline handlers only by their hash
        digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
        assert "'unsafe-hashes'" in allowed and f"'sha256-{digest}'" in allowed, code


def test_htmx_is_told_not_to_inject_styles_or_eval(admin_web):
    html = admin_web.get(reverse("dashboard")).content.decode()
    assert '"includeIndicatorStyles": false' in html
    assert '"allowEval": false' in html


# --- createadmin: the password never in a log -------------------------------------------


def createadmin_env(var: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url(),
        "XMAILADMIN_VAR_DIR": str(var),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "XMAILADMIN_FERNET_KEY": ",".join(settings.FERNET_KEYS),
    }


def test_createadmin_into_a_pipe_or_log_names_the_file_but_not_the_password(
    transactional_db, tmp_path, settings
):
    result = manage("createadmin", env=createadmin_env(tmp_path))  # as run.sh: $(manage ...)
    assert result.returncode == 0, result.stderr
    file = tmp_path / "admin_password"
    password = file.read_text().strip()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert f"password in {file} (0600)" in result.stdout
    assert password not in result.stdout and password not in result.stderr
    from django.contrib.auth import get_user_model

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # the real one
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_createadmin_on_a_terminal_shows_the_password_once(transactional_db, tmp_path):
    import pty

    master, slave = pty.openpty()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "XMAILADMIN_"))}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "createadmin"],
        cwd=REPO, env={**clean, **createadmin_env(tmp_path)},
        stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    password = (tmp_path / "admin_password").read_text().strip()
    assert f"Password: {password}" in shown.decode()
    again = manage("createadmin", env=createadmin_env(tmp_path))
    assert password not in again.stdout and "admin_password" in again.stdout


# --- the policy in a real browser ------------------------------------------------------

WATCH_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`);
});
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_chromium_runs_every_page_without_a_policy_violation(
    live_server, panel_admin, offline_account, monkeypatch
):
    import shutil

    from tests.panel.test_browser import CHROMIUM, FLAGS
    from xmailadmin.models import Account

    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    second = Account.objects.create(
        name="Zweitkonto", host="smtp2.example.org", port=465, username="zwei",
        sender="zwei@example.org", recipient="admin@example.org",
    )  # fmt: skip
    base = live_server.url
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_context().new_page()
        page.set_default_timeout(20_000)
        page.add_init_script(WATCH_VIOLATIONS)
        seen: list[str] = []

        def collect() -> None:
            seen.extend(f"{page.url}: {v}" for v in page.evaluate("window.__csp"))

        page.goto(f"{base}/login/")
        page.fill("#id_username", "chef")
        page.fill("#id_password", "pw-chef")
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base}/")
        assert page.evaluate("typeof htmx") == "object"
        collect()
        for path in ("/accounts/", "/accounts/new/", "/history/", "/password/", "/admin/"):
            page.goto(base + path)
            collect()
        page.goto(f"{base}/order/")
        assert page.evaluate("typeof Sortable") == "function"
        collect()
        # htmx at work: the history filter reloads its results in place.
        page.goto(f"{base}/history/")
        with page.expect_request(lambda r: "/history/?" in r.url and "hx-request" in r.headers):
            page.locator("#history-results").evaluate("e => e.dataset.old = '1'")
            page.locator("form.filters select").first.select_option(index=1)
        page.locator("#history-results:not([data-old])").wait_for()
        collect()
        # The relay page's account select submits itself (the inline handler by its hash).
        page.goto(f"{base}/relay/postfix/")
        page.select_option("#account-select", str(second.pk))
        page.wait_for_url(f"**/relay/postfix/?account={second.pk}")
        collect()
        browser.close()
    assert seen == []
