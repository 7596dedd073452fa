"""A German admin sees German everywhere: every page, after a real probe and real test
mails, shows no English sentence of transports, and the error pages and the admin's model
names are German too."""

from __future__ import annotations

import html
import re

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation
from django.views.defaults import server_error
from test_texts import transports_msgids

from xmailadmin import services
from xmailadmin.models import TestSend
from xmailadmin.tasks import probe_all, send_test

pytestmark = pytest.mark.django_db

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
TAG = re.compile(r"<[^>]+>")


def english_fragments() -> list[str]:
    """Pieces of each transports sentence long enough to be English only, for each
    sentence whose German differs."""
    fragments = set()
    with translation.override("de"):
        for msgid in transports_msgids():
            if translation.gettext(msgid) == msgid:
                continue  # same in both languages (a tool name): nothing to find
            for piece in PLACEHOLDER.split(msgid):
                piece = piece.strip(" :;,.()")
                if len(piece) >= 15 and len(piece.split()) >= 3:
                    fragments.add(piece)
    return sorted(fragments)


def visible_text(page: str) -> str:
    """What the reader sees: no tags, no transcripts (the tools' own words stay English)."""
    page = re.sub(r"<pre\b.*?</pre>", " ", page, flags=re.S)
    return html.unescape(TAG.sub(" ", page))


@pytest.fixture
def pages_after_real_work(admin_web, admin_client, account, worker_alive):
    run = services.start_probe(None)
    probe_all.apply(kwargs={"run_id": run.id})
    for send in services.start_tests(account, ["python3", "curl", "mutt"], None):
        send_test.apply(kwargs={"send_id": send.id})
    assert TestSend.objects.filter(reason_text__isnull=False).count() == 3
    urls = [
        reverse("dashboard"),
        reverse("accounts"),
        reverse("account-new"),
        reverse("account-edit", args=[account.pk]),
        reverse("order"),
        reverse("history"),
        reverse("outbox"),
        reverse("relay", args=["postfix"]),
        reverse("relay", args=["exim"]),
        reverse("password_change"),
    ]
    pages = {url: admin_web.get(url) for url in urls}
    # /admin/ (read-only) is for superusers only.
    for url in (reverse("admin:index"), reverse("admin:xmailadmin_testsend_changelist")):
        pages[url] = admin_client.get(url)
    return pages


def test_every_page_after_a_probe_and_test_mails_shows_no_english_sentence(
    pages_after_real_work,
):
    fragments = english_fragments()
    assert len(fragments) > 100  # the scan found the sentences
    found = {}
    for url, response in pages_after_real_work.items():
        assert response.status_code == 200, url
        text = visible_text(response.content.decode())
        if left := [f for f in fragments if f in text]:
            found[url] = left
    assert found == {}


def test_the_admin_names_the_panels_rows_in_german(pages_after_real_work):
    index = visible_text(pages_after_real_work[reverse("admin:index")].content.decode())

    for german in ("Testmails", "Prüfläufe", "Änderungsprotokoll", "Relay-Aufträge"):
        assert german in index
    assert "Test sends" not in index and "Relay jobs" not in index


def test_a_missing_page_says_so_in_german(admin_web):
    response = admin_web.get("/there-is-no-such-page/")

    assert response.status_code == 404
    assert "Seite nicht gefunden" in response.content.decode()


def test_a_server_error_page_says_so_in_german():
    with translation.override("de"):
        response = server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    assert "Serverfehler" in response.content.decode()
    assert "Ihre Eingaben gingen nicht verloren" in response.content.decode()
