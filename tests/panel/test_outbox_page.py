"""The outbox page and the overview's outbox line, with rows made by the real delivery:
messages submitted through bin/xmail-sendmail, delivered (or refused) by the test SMTP
server. Administrators retry and discard; support sees everything and changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from email.header import Header

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from outbox_helpers import message, sendmail, use_order
from panel_workers import use_broker

from xmailadmin import delivery
from xmailadmin.models import AuditEntry, Outbox, OutboxMessage

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
GONE = "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown"
LATER = "450 4.2.0 <later@example.net>: Recipient address rejected: greylisted"


def submit(outbox, subject: str, to: str = "rcpt@example.net") -> str:
    """``subject`` goes in as an RFC 2047 encoded word, as mail libraries write it."""
    before = set((outbox / "new").iterdir())
    encoded = Header(subject, "utf-8").encode()
    result = sendmail(outbox, "-f", "app@example.org", to, stdin=message(encoded, to))
    assert result.returncode == 0, result.stderr
    [new] = set((outbox / "new").iterdir()) - before
    return new.name


def text(response) -> str:
    """The response's HTML with Django's no-break spaces ("45\u00a0Minuten") as spaces."""
    return response.content.decode().replace("\xa0", " ")


def row_of(spool_id: str) -> OutboxMessage:
    return OutboxMessage.objects.get(spool_id=spool_id)


def message_file(outbox, spool_id: str) -> list[str]:
    """The folders of the outbox that still hold the message."""
    return [d for d in ("new", "cur", "done") if (outbox / d / spool_id).exists()]


@pytest.fixture
def delivered_and_bounced(outbox, account, refusing):
    """One message the server took, one it refused for good (550 at RCPT TO)."""
    use_order("python3", "curl")
    refusing.refused_recipients["gone@example.net"] = GONE
    ok = submit(outbox, "Rechnung März")
    bounced = submit(outbox, "Unzustellbar", to="gone@example.net")
    delivery.run(outbox)
    assert row_of(ok).state == Outbox.DELIVERED and row_of(bounced).state == Outbox.BOUNCED
    return row_of(ok), row_of(bounced)


@pytest.fixture
def waiting(outbox, account, refusing, settings):
    """A message the server put off (450): waiting for its next try in five minutes."""
    settings.XMAILADMIN_OUTBOX_MIN_BACKOFF = 300
    use_order("python3")
    refusing.refused_recipients["later@example.net"] = LATER
    spool_id = submit(outbox, "Später", to="later@example.net")
    delivery.run(outbox)
    row = row_of(spool_id)
    assert row.state == Outbox.WAITING and row.next_try_at > timezone.now()
    return row


# --- what the page shows ------------------------------------------------------------------


def test_the_page_shows_delivered_and_bounced_messages_in_german(admin_web, delivered_and_bounced):
    ok, bounced = delivered_and_bounced

    html = text(admin_web.get(reverse("outbox"), {"state": "all"}))

    assert "<h1>Postausgang</h1>" in html and 'id="nav-outbox"' in html
    assert "Rechnung März" in html and "Unzustellbar" in html
    assert "app@example.org" in html  # the sender as the application gave it
    assert "✓ zugestellt" in html and "✗ abgewiesen" in html
    assert 'gone@example.net <span class="small">(abgewiesen)</span>' in html
    assert "User unknown" in html  # the server's reason, in the bounced message's row
    assert "Zugestellt mit" in html and ok.command_label in html
    assert "1 Zustellversuch" in html and "Versuche anzeigen" in html
    assert html.index("Unzustellbar") < html.index("Rechnung März")  # newest first


def test_every_attempt_opens_in_place_with_its_transcript(admin_web, delivered_and_bounced):
    ok, bounced = delivered_and_bounced

    html = text(admin_web.get(reverse("outbox-tries", args=[bounced.pk]), **HTMX))
    assert "<html" not in html
    assert "✗ endgültig abgewiesen" in html and "RCPT TO" in html
    assert "gone@example.net" in html and "User unknown" in html
    after = html.split("Protokoll (ohne Passwort)", 1)[1]
    transcript = re.search(r"<pre class=\"log\">([^<]*)</pre>", after).group(1)
    assert "gone@example.net" in transcript and "550" in transcript

    html = text(admin_web.get(reverse("outbox-tries", args=[ok.pk]), **HTMX))
    [attempt] = ok.tries.all()
    assert "✓ angenommen" in html and attempt.tls_version in html


def test_the_attempts_have_a_page_of_their_own_without_javascript(admin_web, delivered_and_bounced):
    ok, bounced = delivered_and_bounced
    listing = text(admin_web.get(reverse("outbox"), {"state": "bounced"}))
    link = reverse("outbox-message", args=[bounced.pk])
    assert link in listing and "Rechnung März" not in listing  # the filter

    html = text(admin_web.get(link))
    assert '<details class="tries" open>' in html
    assert "endgültig abgewiesen" in html and "Zurück zum Postausgang" in html


def test_the_default_filter_shows_what_is_still_open(admin_web, delivered_and_bounced, waiting):
    html = text(admin_web.get(reverse("outbox")))

    assert "Später" in html and "◷ wartet" in html
    assert 'later@example.net <span class="small">(noch nicht zugestellt)</span>' in html
    assert "Nächster Versuch" in html and "in 4 Minuten" in html  # 300 s, a moment ago
    assert "Rechnung März" not in html and "Unzustellbar" not in html
    assert 'aria-current="page" data-filter="open">Offen (1)' in html


def test_the_page_speaks_english_after_the_switch(admin_web, waiting):
    admin_web.post(reverse("set_language"), {"language": "en", "next": "/"})

    html = text(admin_web.get(reverse("outbox")))

    assert "<h1>Outbox</h1>" in html and "Retry now" in html and "Discard" in html
    assert "(not delivered yet)" in html and "greylisted" in html


# --- polling --------------------------------------------------------------------------------


def test_a_waiting_row_polls_itself_and_stops_with_286_once_delivered(
    admin_web, outbox, waiting, refusing
):
    html = text(admin_web.get(reverse("outbox")))
    assert f'hx-get="{reverse("outbox-row", args=[waiting.pk])}"' in html
    assert 'hx-trigger="every 5s"' in html  # its next try is minutes away

    refusing.refused_recipients.clear()
    OutboxMessage.objects.filter(pk=waiting.pk).update(next_try_at=timezone.now())
    response = admin_web.get(reverse("outbox-row", args=[waiting.pk]), **HTMX)
    assert response.status_code == 200  # due now: asked often, as a running test row is
    assert re.search(r'hx-trigger="every (100|200|500)ms"', text(response))

    delivery.run(outbox)

    response = admin_web.get(reverse("outbox-row", args=[waiting.pk]), **HTMX)
    assert response.status_code == 286
    assert "✓ zugestellt" in text(response) and "hx-trigger" not in text(response)


# --- retry and discard ----------------------------------------------------------------------


def test_retry_makes_a_bounced_message_due_and_the_next_run_delivers_it(
    admin_web, panel_admin, outbox, delivered_and_bounced, refusing
):
    _, bounced = delivered_and_bounced
    refusing.refused_recipients.clear()  # the address exists again

    response = admin_web.post(reverse("outbox-retry", args=[bounced.pk]), **HTMX)

    html = text(response)
    assert html.lstrip().startswith(f'<tbody id="msg-{bounced.pk}"')  # the message, swapped
    assert "Die Nachricht ist jetzt fällig" in html and "◷ wartet" in html
    row = row_of(bounced.spool_id)
    assert row.state == Outbox.WAITING and row.next_try_at <= timezone.now()
    assert row.pending == ["gone@example.net"] and message_file(outbox, row.spool_id) == ["cur"]
    entry = AuditEntry.objects.get(action=AuditEntry.Action.OUTBOX_RETRY)
    assert entry.target == row.spool_id and entry.user == panel_admin
    assert "gone@example.net" in entry.detail and "Unzustellbar" in entry.detail

    delivery.run(outbox)

    assert row_of(bounced.spool_id).state == Outbox.DELIVERED
    got = refusing.wait_for(
        lambda r: "Unzustellbar" in r.raw.decode() and "gone@" in str(r.rcpt_tos)
    )
    assert got.rcpt_tos == ["gone@example.net"]


def test_retry_without_javascript_redirects_back_to_the_list_with_the_outcome(
    admin_web, delivered_and_bounced
):
    _, bounced = delivered_and_bounced
    back = reverse("outbox") + "?state=bounced"

    response = admin_web.post(reverse("outbox-retry", args=[bounced.pk]), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    html = text(admin_web.get(back))
    assert "Die Nachricht ist jetzt fällig: eine Zustellung ist angestoßen." in html

    response = admin_web.post(
        reverse("outbox-retry", args=[bounced.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("outbox")  # never somewhere else


def test_a_delivered_message_cannot_be_retried_or_discarded(admin_web, delivered_and_bounced):
    ok, _ = delivered_and_bounced
    html = text(admin_web.get(reverse("outbox"), {"state": "delivered"}))
    assert f'data-retry="{ok.pk}"' not in html and f'data-discard="{ok.pk}"' not in html

    html = text(admin_web.post(reverse("outbox-retry", args=[ok.pk]), **HTMX))
    assert "lässt sich nicht erneut versuchen" in html
    html = text(admin_web.post(reverse("outbox-discard", args=[ok.pk]), {"confirm": "1"}, **HTMX))
    assert "schon zugestellt oder verworfen" in html
    assert row_of(ok.spool_id).state == Outbox.DELIVERED
    assert not AuditEntry.objects.filter(action__startswith="outbox").exists()


def test_a_retry_while_the_broker_is_away_says_the_worker_sends_it_at_its_next_look(
    admin_web, embedded_broker, refused_port, waiting, settings
):
    use_broker(f"redis://127.0.0.1:{refused_port}/0")
    try:
        response = admin_web.post(reverse("outbox-retry", args=[waiting.pk]), **HTMX)
    finally:
        use_broker("filesystem://", embedded_broker)

    html = text(response)
    assert "Broker hat den Zustellauftrag nicht angenommen" in html
    assert f"alle {settings.XMAILADMIN_OUTBOX_SCAN} s" in html
    assert row_of(waiting.spool_id).next_try_at <= timezone.now()  # due all the same


def test_discard_asks_on_the_page_first_then_removes_the_message_file(
    admin_web, panel_admin, outbox, waiting
):
    url = reverse("outbox-discard", args=[waiting.pk])
    assert message_file(outbox, waiting.spool_id) == ["cur"]

    html = text(admin_web.post(url, **HTMX))
    assert "hx-confirm" not in html and "<html" not in html
    assert "Die Nachricht „Später“ an later@example.net wirklich verwerfen?" in html
    assert 'name="confirm" value="1"' in html
    assert row_of(waiting.spool_id).state == Outbox.WAITING  # asked, nothing done yet

    html = text(admin_web.post(url))  # the same question without JavaScript
    assert "wirklich verwerfen?" in html and "<html" in html

    response = admin_web.post(url, {"confirm": "1"}, follow=True)

    assert "Nachricht verworfen: sie wird nicht gesendet." in text(response)
    assert row_of(waiting.spool_id).state == Outbox.DISCARDED
    assert message_file(outbox, waiting.spool_id) == []
    entry = AuditEntry.objects.get(action=AuditEntry.Action.OUTBOX_DISCARD)
    assert entry.target == waiting.spool_id and entry.user == panel_admin
    assert delivery.run(outbox).delivered == 0  # nothing left to send


def test_a_message_being_sent_is_not_discarded(admin_web, outbox, waiting):
    from outbox import store

    OutboxMessage.objects.filter(pk=waiting.pk).update(state=Outbox.SENDING)
    with store.held(outbox, waiting.spool_id) as mine:  # as a delivery holds it
        assert mine
        response = admin_web.post(
            reverse("outbox-discard", args=[waiting.pk]), {"confirm": "1"}, **HTMX
        )
    html = text(response)

    assert "wird gerade gesendet: bitte gleich noch einmal versuchen" in html
    assert message_file(outbox, waiting.spool_id) == ["cur"]
    assert row_of(waiting.spool_id).state == Outbox.SENDING


# --- roles ----------------------------------------------------------------------------------


def test_support_sees_the_outbox_but_no_buttons(support_web, waiting):
    html = text(support_web.get(reverse("outbox")))

    assert "Später" in html and "later@example.net" in html
    assert reverse("outbox-retry", args=[waiting.pk]) not in html
    assert reverse("outbox-discard", args=[waiting.pk]) not in html
    assert "Jetzt erneut versuchen" not in html
    html = text(support_web.get(reverse("outbox-tries", args=[waiting.pk]), **HTMX))
    assert "greylisted" in html


@pytest.mark.parametrize("action", ["outbox-retry", "outbox-discard"])
def test_a_forged_post_by_support_is_refused(support_web, outbox, waiting, action):
    before = row_of(waiting.spool_id)

    response = support_web.post(reverse(action, args=[waiting.pk]), {"confirm": "1"})

    assert response.status_code == 403
    after = row_of(waiting.spool_id)
    assert (after.state, after.next_try_at) == (before.state, before.next_try_at)
    assert message_file(outbox, waiting.spool_id) == ["cur"]
    assert not AuditEntry.objects.filter(action__startswith="outbox").exists()


@pytest.mark.parametrize("name", ["outbox", "outbox-message", "outbox-row", "outbox-tries"])
def test_every_outbox_page_needs_a_login(client, waiting, name):
    args = [] if name == "outbox" else [waiting.pk]
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- the overview's outbox line ----------------------------------------------------------------


def test_the_overview_shows_what_waits_and_warns_only_when_the_oldest_is_old(
    admin_web, outbox, waiting, settings
):
    html = text(admin_web.get(reverse("dashboard")))
    assert "1 Nachricht wartet, die älteste seit weniger als einer Minute" in html
    assert 'class="outbox-line card"' in html and "outbox-warning" not in html
    assert reverse("outbox") in html

    OutboxMessage.objects.filter(pk=waiting.pk).update(
        submitted_at=timezone.now() - timedelta(minutes=45, seconds=5)
    )
    html = text(admin_web.get(reverse("dashboard")))  # not the cached page

    assert 'class="outbox-line card late"' in html
    warning = re.search(r'class="outbox-warning[^>]*>(.*?)</span>', html, re.S).group(1)
    assert warning.startswith("⚠ Seit 45 Minuten wartet eine Nachricht im Postausgang: ")
    assert "abgelehnt" in warning and "greylisted" in warning  # the reason, said in German

    settings.XMAILADMIN_OUTBOX_WARN_AGE = 3600  # the limit is the setting's
    OutboxMessage.objects.filter(pk=waiting.pk).update(
        submitted_at=timezone.now() - timedelta(minutes=46)
    )
    html = text(admin_web.get(reverse("dashboard")))
    assert "1 Nachricht wartet, die älteste seit 46 Minuten" in html
    assert "outbox-warning" not in html


def test_the_overview_counts_a_new_message_and_the_bounces_of_the_day_despite_its_cache(
    admin_web, outbox, delivered_and_bounced
):
    html = text(admin_web.get(reverse("dashboard")))
    assert "nichts wartet" in html and "1 abgewiesen in den letzten 24 Stunden" in html

    delivery.run(outbox)  # takes the non-delivery notice to the sender, and sends it
    submit(outbox, "Noch eine")
    delivery.pickup(outbox)

    html = text(admin_web.get(reverse("dashboard")))
    assert "1 Nachricht wartet" in html and "1 abgewiesen in den letzten 24 Stunden" in html
    OutboxMessage.objects.filter(state=Outbox.BOUNCED).update(
        finished_at=timezone.now() - timedelta(hours=25)
    )
    cache.clear()  # the page cache's key has the minute: it is another one by then
    html = text(admin_web.get(reverse("dashboard")))
    assert "in den letzten 24 Stunden" not in html


# --- in the browser ---------------------------------------------------------------------------


@pytest.fixture
def browser_page(monkeypatch):
    """Headless Chromium, as tests/panel/test_browser.py drives it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM calls of the test
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
        page.set_default_timeout(20_000)
        yield page
        browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_administrator_retries_and_discards_in_the_browser_without_a_reload(
    browser_page, live_server, panel_admin, outbox, waiting, refusing
):
    page, base = browser_page, live_server.url
    spool_id = submit(outbox, "Zum Verwerfen", to="later@example.net")
    delivery.run(outbox)
    other = row_of(spool_id)
    page.goto(f"{base}/login/")
    page.fill("#id_username", "chef")
    page.fill("#id_password", "pw-chef")
    page.click("button[type=submit].primary")
    page.goto(f"{base}/outbox/")
    page.evaluate("window.__noReload = true")

    later = page.locator(f"#msg-{waiting.pk}")
    later.locator("details.tries summary").click()  # the attempts open in place
    later.locator(".tries-body table.tries-table").wait_for()
    assert "greylisted" in later.locator(".tries-body").inner_text()

    refusing.refused_recipients.clear()
    later.locator(f'[data-retry="{waiting.pk}"]').click()
    later.locator("text=Die Nachricht ist jetzt fällig").wait_for()
    delivery.run(outbox)  # as the worker would: the row polls itself and shows it
    page.locator(f'#out-{waiting.pk}[data-state="delivered"]').wait_for(timeout=15_000)

    gone = page.locator(f"#msg-{other.pk}")
    gone.locator(f'[data-discard="{other.pk}"]').click()
    gone.locator("text=wirklich verwerfen?").wait_for()
    gone.locator(f"#discard-yes-{other.pk}").click()
    gone.locator("text=Nachricht verworfen").wait_for()
    assert row_of(other.spool_id).state == Outbox.DISCARDED
    assert page.evaluate("window.__noReload") is True


# --- the admin address -------------------------------------------------------------------


def test_an_admin_sets_the_admin_address_that_xmail_sendmail_reads(admin_web, outbox, panel_admin):
    html = text(admin_web.get(reverse("outbox")))
    assert "Keine gesetzt: Post an root wird abgelehnt" in html

    response = admin_web.post(reverse("outbox-admin-address"), {"address": "ops@example.org"},
                              follow=True)  # fmt: skip

    assert "Admin-Adresse gespeichert: ops@example.org" in text(response)
    assert (outbox / "adminaddr").read_text() == "ops@example.org\n"
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ADMIN_ADDRESS)
    assert (entry.target, entry.user) == ("ops@example.org", panel_admin)
    result = sendmail(outbox, "root", stdin=message("Cron-Ausgabe", "root"))
    assert result.returncode == 0, result.stderr  # cron's mail to root is taken now


def test_a_bad_admin_address_is_refused_and_kept_in_the_field(admin_web, outbox):
    (outbox / "adminaddr").write_text("ops@example.org\n")

    response = admin_web.post(reverse("outbox-admin-address"), {"address": "ops at example"})

    assert response.status_code == 400
    html = text(response)
    assert "„ops at example“ ist keine E-Mail-Adresse: nichts wurde geändert." in html
    assert 'value="ops at example"' in html
    assert (outbox / "adminaddr").read_text() == "ops@example.org\n"
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.ADMIN_ADDRESS).exists()


def test_support_sees_the_admin_address_but_cannot_set_it(support_web, outbox):
    (outbox / "adminaddr").write_text("ops@example.org\n")
    html = text(support_web.get(reverse("outbox")))
    assert "ops@example.org" in html and 'name="address"' not in html

    response = support_web.post(reverse("outbox-admin-address"), {"address": "evil@example.org"})

    assert response.status_code == 403
    assert (outbox / "adminaddr").read_text() == "ops@example.org\n"
