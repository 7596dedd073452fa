"""The pages in headless Chromium (Debian's package, driven by Playwright).

A person's path: log in, add an account pointing at the test SMTP server, run a
probe, press "test all", watch pass and fail rows appear without a reload, open a
transcript, reorder by dragging. Screenshots go to tests/artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from transports.catalogue import KEYS
from xmailadmin import order
from xmailadmin.models import Account, RelayJob, TestSend, TransportSetting

pytestmark = [pytest.mark.browser, pytest.mark.celery, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
COMMANDS = ["python3", "curl", "mailx-heirloom"]


@pytest.fixture
def page(monkeypatch) -> Iterator:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls of
    # the test itself are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.set_default_timeout(20_000)
        page = context.new_page()
        yield page
        browser.close()


def log_in(page, base: str, user: str = "chef") -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", user)
    page.fill("#id_password", f"pw-{user}")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")


def use_only(keys: list[str]) -> None:
    rest = [k for k in KEYS if k not in keys]
    order.save_order(order.OrderProposal(keys + rest, frozenset(keys)))


def test_an_administrator_sets_up_and_tests_mail_in_the_browser(
    page, live_server, live_worker, smtp_server, panel_admin
):
    base = live_server.url
    log_in(page, base)
    assert page.locator("#no-account").is_visible()
    assert page.locator("#no-probe").is_visible()

    # Account pointing at the test SMTP server.
    page.click("text=SMTP-Konto anlegen")
    page.fill("#id_name", "Testserver")
    page.fill("#id_host", "smtp;reboot")
    page.fill("#id_port", "65536")
    page.click("button[type=submit].primary")
    assert "Es wurde nichts gespeichert" in page.locator(".notice-error").inner_text()
    assert "zwischen 1 und 65535" in page.locator(".field.has-error").nth(1).inner_text()
    page.screenshot(path=str(SHOTS / "account-form-errors.png"), full_page=True)
    assert not Account.objects.exists()
    page.fill("#id_host", smtp_server.host)
    page.fill("#id_port", str(smtp_server.starttls_port))
    page.fill("#id_username", smtp_server.user)
    page.fill("#id_password", smtp_server.password)
    page.fill("#id_sender", "panel@example.org")
    page.fill("#id_recipient", "admin@example.org")
    page.fill("#id_ca_file", str(smtp_server.ca_file))
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/accounts/")
    assert page.locator(".notice-success").is_visible()
    account = Account.objects.get()
    assert account.decrypt_password() == smtp_server.password
    use_only(COMMANDS)

    # Probe: the table fills in without a reload.
    page.goto(f"{base}/")
    page.evaluate("window.__noReload = true")
    page.click("#probe-button")
    page.locator("#row-python3 .verdict").first.wait_for()
    assert "OpenSSL" in page.locator("#row-python3").inner_text()

    # Test all: rows go running → passed / not installed (neutral), still without a reload.
    page.click("#test-all")
    page.locator('#row-python3[data-state="passed"], #row-python3[data-state="warning"]').wait_for(
        timeout=60_000
    )
    page.locator('#row-curl[data-state="passed"], #row-curl[data-state="warning"]').wait_for(
        timeout=60_000
    )
    missing = page.locator('#row-mailx-heirloom[data-state="not_installed"]')
    missing.wait_for(timeout=60_000)
    assert "nicht installiert" in missing.inner_text()
    assert missing.locator("text=Testmail senden").count() == 0  # no button for it
    assert page.evaluate("window.__noReload") is True
    assert (
        TestSend.objects.filter(state="passed").count()
        + TestSend.objects.filter(state="warning").count()
        == 2
    )
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    # The transcript opens in place.
    page.locator("#row-python3 details.transcript summary").click()
    transcript = page.locator("#row-python3 .transcript-body pre.log").last
    transcript.wait_for()
    assert "AUTH" in transcript.inner_text() or "auth" in transcript.inner_text().lower()
    assert smtp_server.password not in page.content()
    assert page.evaluate("window.__noReload") is True
    page.screenshot(path=str(SHOTS / "dashboard-transcript.png"), full_page=True)


def drag_to_top(page, key: str, until: str, tries: int = 3) -> None:
    """Drag a command's handle above the first row, as a person does, until ``until`` shows.

    A synthetic drag started while htmx is still swapping the list can miss; the person
    would simply drag again, and so does this (the outcome is what the test checks).
    """
    for attempt in range(1, tries + 1):
        page.wait_for_load_state("networkidle")
        handle = page.locator(f'.order-item[data-key="{key}"] .handle')
        handle.scroll_into_view_if_needed()
        box_from = handle.bounding_box()
        box_to = page.locator(".order-item").first.bounding_box()
        page.mouse.move(box_from["x"] + 5, box_from["y"] + 5)
        page.mouse.down()
        page.mouse.move(box_from["x"] + 5, box_from["y"] - 10, steps=5)  # start the drag
        page.mouse.move(box_to["x"] + 20, box_to["y"] + 2, steps=25)
        page.mouse.up()
        try:
            page.locator(until).wait_for(timeout=8000)
            return
        except PlaywrightTimeoutError:
            if attempt == tries:
                raise


def test_an_administrator_reorders_by_dragging_and_by_buttons(page, live_server, panel_admin):
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/order/")
    first = page.locator(".order-item").first
    assert first.get_attribute("data-key") == "python"

    # Drag curl (4th) above python (1st).
    drag_to_top(page, "curl", until='.order-item[data-key="curl"] >> text=wird benutzt')
    assert [s.key for s in TransportSetting.ordered()][0] == "curl"
    page.screenshot(path=str(SHOTS / "order.png"), full_page=True)

    # Up/down buttons.
    page.locator('.order-item[data-key="perl"] [data-direction="up"]').click()
    # Not wait_for_function: it evaluates a string, which the panel's CSP forbids.
    expect(page.locator(".order-item").nth(2)).to_have_attribute("data-key", "perl")
    assert [s.key for s in TransportSetting.ordered()][:3] == ["curl", "python", "perl"]

    # An unsuitable command dragged to the top asks first.
    drag_to_top(page, "mutt", until="#order-confirm")
    assert [s.key for s in TransportSetting.ordered()][0] == "curl"
    page.screenshot(path=str(SHOTS / "order-confirm.png"), full_page=True)
    page.locator("#order-confirm button").click()
    page.locator("#order-confirm").wait_for(state="detached")
    assert [s.key for s in TransportSetting.ordered()][0] == "mutt"


def test_support_sees_the_empty_states_and_switches_to_english(
    page, live_server, support_user, offline_account
):
    base = live_server.url
    page.goto(f"{base}/login/")
    page.fill("#id_username", "support")
    page.fill("#id_password", "pw-support")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")
    assert page.locator("#no-probe").is_visible()
    assert page.locator("#test-all").count() == 1  # support may test ...
    page.goto(f"{base}/accounts/")
    assert page.locator("text=Bearbeiten").count() == 0  # ... but not change
    page.goto(f"{base}/")
    page.screenshot(path=str(SHOTS / "dashboard-empty-support.png"), full_page=True)
    page.click(".langswitch button[value=en]")
    page.wait_for_url(f"{base}/")
    assert page.locator("h1").inner_text() == "Mail commands of this server"
    assert "No probe yet." in page.locator("#probe").inner_text()
    page.screenshot(path=str(SHOTS / "dashboard-english.png"), full_page=True)


def test_an_administrator_checks_the_relay_server_in_the_browser(
    page, live_server, live_worker, panel_admin, offline_account
):
    """The real worker checks the machine's own postfix (installed by scripts/setup.sh
    test, unconfigured or not): status and differences appear without a reload."""
    base = live_server.url
    log_in(page, base)
    page.click("#nav-relay")
    page.wait_for_url(f"{base}/relay/postfix/")
    assert page.locator("#no-check").is_visible()
    page.evaluate("window.__noReload = true")

    page.click("#relay-check-button")
    page.locator("#relay-differences li").first.wait_for(timeout=60_000)
    status = page.locator("#relay-status").inner_text()
    assert "Installiert" in status and "ja" in status
    assert "OpenSSL" in status
    differences = page.locator("#relay-differences").inner_text()
    assert "Abweichungen vom Konto" in differences
    assert page.locator("#relay-config pre.secret").inner_text().strip().endswith(":********")
    assert page.evaluate("window.__noReload") is True
    page.screenshot(path=str(SHOTS / "relay.png"), full_page=True)

    # The confirmation lists what would be written; looking at it writes nothing.
    page.click("#relay-apply-button")
    page.locator("#apply-plan").wait_for()
    assert "sasl_passwd" in page.locator("#apply-plan").inner_text()
    page.screenshot(path=str(SHOTS / "relay-confirm.png"), full_page=True)
    assert not RelayJob.objects.filter(kind="apply").exists()


def test_an_administrator_detects_the_mode_and_uses_it(page, live_server, smtp_server, panel_admin):
    """Implicit TLS on a port other than 465: "Detect the mode" asks the server, "use this
    mode" sets the select, and the saved account is not warned about its port."""
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/accounts/new/")
    page.fill("#id_name", "Implizit")
    page.fill("#id_host", smtp_server.host)
    page.fill("#id_port", str(smtp_server.smtps_port))
    assert page.locator("#id_mode").input_value() == ""
    page.click("#detect-mode")
    finding = page.locator("#detect-finding")
    finding.wait_for()
    assert "SMTPS" in finding.inner_text() and "erwartet zuerst TLS" in finding.inner_text()
    page.screenshot(path=str(SHOTS / "account-detect-mode.png"), full_page=True)
    page.click("#use-detected-mode")
    expect(page.locator("#id_mode")).to_have_value("smtps")
    expect(page.locator("#use-detected-mode")).to_be_disabled()
    page.fill("#id_username", smtp_server.user)
    page.fill("#id_password", smtp_server.password)
    page.fill("#id_sender", "panel@example.org")
    page.fill("#id_recipient", "admin@example.org")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/accounts/")
    assert page.locator(".notice-warning").count() == 0
    assert "vom Server bestätigt" in page.locator("table.list").inner_text()
    account = Account.objects.get()
    assert (account.mode, account.detected_mode) == ("smtps", "smtps")
    assert smtp_server.password not in page.content()

    # Deleting asks on the page (a browser confirm() box would be dismissed here).
    page.locator(f'[data-delete="{account.pk}"]').click()
    page.locator("#delete-confirm").wait_for()
    assert "»Implizit« wirklich löschen" in page.locator("#delete-confirm").inner_text()
    assert Account.objects.exists()
    page.screenshot(path=str(SHOTS / "account-delete-confirm.png"), full_page=True)
    page.click("#delete-yes")
    page.wait_for_url(f"{base}/accounts/")
    page.locator("text=Noch kein SMTP-Konto").wait_for()
    assert not Account.objects.exists()


def test_an_administrator_checks_the_server_before_saving_and_sees_the_tls_matrix(
    page, live_server, live_worker, smtp_server, panel_admin
):
    """"Check the server" on a new account's form, with the values typed and the password
    only typed: the real worker answers, the findings appear without a reload, nothing
    is saved; after saving, the diagnosis page shows the TLS matrix."""
    base = live_server.url
    log_in(page, base)
    page.goto(f"{base}/accounts/new/")
    page.evaluate("window.__noReload = true")
    page.fill("#id_name", "Geprüft")
    page.fill("#id_host", smtp_server.host)
    page.fill("#id_port", str(smtp_server.starttls_port))
    page.fill("#id_username", smtp_server.user)
    page.fill("#id_password", smtp_server.password)
    page.fill("#id_ca_file", str(smtp_server.ca_file))
    page.click("#check-server")
    page.locator("#server-check .findings").wait_for(timeout=60_000)
    findings = page.locator("#server-check .findings").inner_text()
    assert "✓ login" in findings
    assert page.locator('#server-tls-versions [data-version="1.3"]').get_attribute(
        "data-accepted"
    ) == "yes"
    assert page.evaluate("window.__noReload") is True
    assert not Account.objects.exists()
    assert smtp_server.password not in page.locator("#server-check").inner_html()
    page.screenshot(path=str(SHOTS / "account-check-server.png"), full_page=True)

    page.fill("#id_sender", "panel@example.org")
    page.fill("#id_recipient", "admin@example.org")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/accounts/")
    account = Account.objects.get()
    page.click(f'[data-diagnosis="{account.pk}"]')
    page.wait_for_url(f"{base}/accounts/{account.pk}/diagnosis/")
    assert page.locator("#tls-matrix").is_visible()
    page.click("#server-check-button")
    page.locator("#server-job .findings").wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "diagnosis.png"), full_page=True)


def test_support_downloads_a_bundle_and_reads_a_hostile_one_without_running_it(
    page, live_server, support_user, offline_account, tmp_path
):
    """The bundle comes from the page's button; a customer's bundle with script in its
    values is uploaded through the file field: shown marked and escaped, no dialog."""
    import json

    base = live_server.url
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, base, "support")
    page.click("#nav-support")
    with page.expect_download() as download:
        page.click("#bundle-json")
    data = json.loads(Path(download.value.path()).read_text())
    assert data["accounts"][0]["name"] == offline_account.name

    data["server"] = "kunde<img src=x onerror=alert(1)>"
    data["accounts"][0]["name"] = "<script>alert('x')</script>"
    hostile = tmp_path / "kunde.json"
    hostile.write_text(json.dumps(data))
    page.set_input_files("#bundle-file", str(hostile))
    page.click("#bundle-upload-button")
    page.wait_for_url(f"{base}/support/bundles/*/")
    banner = page.locator("#bundle-banner").inner_text()
    assert "Supportpaket von kunde<img src=x onerror=alert(1)>" in banner
    assert "nur lesbar" in banner
    assert "<script>alert('x')</script>" in page.locator(".bundle-account h2").inner_text()
    assert page.locator(".bundle-account form").count() == 0
    page.screenshot(path=str(SHOTS / "support-bundle.png"), full_page=True)
    assert dialogs == []
