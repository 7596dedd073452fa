"""An opened transcript on the overview is as wide as the table, not the width of its
"last test" column; the send page shows the TLS version or says the tool named none."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from test_browser import SHOTS, log_in, page  # noqa: F401 - page is a fixture

from xmailadmin.models import State, TestSend

pytestmark = pytest.mark.django_db(transaction=True)

DIALOGUE = "\n".join(
    f"[2026-12-02 06:40:53] 4< 250-AUTH LOGIN PLAIN NTLM SCRAM-SHA-256 line {n} " + "x" * 60
    for n in range(12)
)


def a_send(account, **fields) -> TestSend:
    return TestSend.objects.create(
        account=account, account_name=account.name, recipient=account.recipient,
        step="done", finished_at=timezone.now(), **fields,
    )  # fmt: skip


@pytest.mark.browser
def test_an_opened_transcript_spans_the_table(page, live_server, account, panel_admin):  # noqa: F811
    a_send(account, command="curl", state=State.PASSED, transcript=DIALOGUE, tls_version="TLSv1.3")
    log_in(page, live_server.url)
    page.locator("#row-curl details.transcript summary").click()
    shown = page.locator("#row-curl .transcript-body pre.log").last
    shown.wait_for()
    assert "SCRAM-SHA-256 line 11" in shown.inner_text()

    table = page.locator("table.commands").bounding_box()
    body = page.locator("#row-curl .transcript-body").bounding_box()
    column = page.locator("#row-curl td.last-test").bounding_box()
    assert body["width"] >= 0.9 * table["width"], (body, table)
    assert body["width"] > 2 * column["width"]
    assert body["y"] >= column["y"]  # opens at its row, not somewhere else
    page.screenshot(path=str(SHOTS / "dashboard-transcript-wide.png"), full_page=True)


@pytest.mark.parametrize(
    ("tls", "shown"), [("TLSv1.3", "TLSv1.3"), ("", "not reported by the tool")]
)
def test_a_pass_names_its_tls_version_or_says_the_tool_named_none(tls, shown, admin_web, account):
    send = a_send(account, command="mailx-mailutils", state=State.WARNING, tls_version=tls)
    admin_web.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    answer = admin_web.get(reverse("send-detail", args=[send.pk]))
    facts = re.search(r"<dt>TLS</dt><dd[^>]*>([^<]*)</dd>", answer.content.decode())
    assert facts and facts.group(1) == shown
