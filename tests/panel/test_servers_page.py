"""The servers page and the chosen server, without worker processes (tests/panel/
test_fleet.py runs two real ones): what needs attention, where the overview's jobs go,
and one server's order copied to another."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from transports.catalogue import KEYS
from xmailadmin import order, services
from xmailadmin.models import (
    Account,
    AuditEntry,
    Diagnosis,
    OutboxMessage,
    ProbeResult,
    ProbeRun,
    RelayJob,
    Server,
    State,
    TestSend,
    TransportSetting,
    WorkerHeartbeat,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def zweit(db) -> Server:
    server = Server.objects.create(name="zweit", queue="xmailadmin-zweit",
                                   last_seen=timezone.now())  # fmt: skip
    WorkerHeartbeat.objects.create(hostname="xmailadmin-zweit@host", server=server)
    return server


def test_the_servers_page_says_which_server_needs_what(admin_web, offline_account, zweit):
    run = ProbeRun.objects.create(server=zweit, state=State.PASSED, finished_at=timezone.now())
    ProbeResult.objects.create(run=run, key="curl", found=True, tls12="no")
    ProbeResult.objects.create(run=run, key="python3", found=True, tls12="yes")
    TestSend.objects.create(server=zweit, account=offline_account, account_name="Büro",
                            command="curl", recipient="a@example.org", state=State.FAILED)
    TestSend.objects.create(server=zweit, account=offline_account, account_name="Büro",
                            command="python3", recipient="a@example.org", state=State.PASSED)
    for i in range(3):
        OutboxMessage.objects.create(server=zweit, spool_id=f"m{i}", sender="app@example.org",
                                     recipients=["x@example.org"], pending=["x@example.org"])
    Server.local()  # this machine, with no worker running
    page = admin_web.get(reverse("servers")).content.decode()
    row = page.split('id="server-zweit"')[1].split("</tr>")[0]
    assert 'data-online="yes"' in row and 'data-attention="yes"' in row
    assert "2 gefunden" in row and "ohne TLS 1.2: curl" in row
    assert "1 bestanden" in row and "✗ curl" in row
    assert "3 Nachrichten warten" in row and "wächst" in row
    local = page.split(f'id="server-{slugify(Server.local().name)}"')[1].split("</tr>")[0]
    assert 'data-online="no"' in local and "nie gesehen" in local
    assert "2 brauchen Aufmerksamkeit." in page


def test_the_chosen_server_gets_the_overviews_jobs_and_keeps_its_rows(
    admin_web, offline_account, zweit
):
    published = []

    def capture(headers=None, routing_key=None, **kwargs):
        published.append((headers["task"], routing_key))

    page = admin_web.get(reverse("dashboard") + f"?server={zweit.pk}").content.decode()
    assert "Mail-Befehle von zweit" in page
    before_task_publish.connect(capture, weak=False)
    try:
        admin_web.post(reverse("probe-start"))
        admin_web.post(reverse("send-one", args=[offline_account.pk, "curl"]))
        admin_web.post(reverse("account-diagnose", args=[offline_account.pk, "server"]))
        admin_web.post(reverse("relay-check", args=["postfix"]), {"account": offline_account.pk})
    finally:
        before_task_publish.disconnect(capture)
    assert ProbeRun.objects.get().server == zweit
    assert TestSend.objects.get().server == zweit
    assert Diagnosis.objects.get().server == zweit and RelayJob.objects.get().server == zweit
    assert [q for _task, q in published] == ["xmailadmin-zweit"] * 4
    # The choice is kept for the next pages, until another is chosen.
    page = admin_web.get(reverse("dashboard")).content.decode()
    assert "Mail-Befehle von zweit" in page and 'data-state="queued"' in page
    local = Server.local()
    page = admin_web.get(reverse("dashboard") + f"?server={local.pk}").content.decode()
    assert f"Mail-Befehle von {local.name}" in page and 'data-state="queued"' not in page


def test_an_offline_server_refuses_a_test_at_once_saying_so(admin_web, offline_account, zweit):
    WorkerHeartbeat.objects.filter(server=zweit).delete()
    Server.objects.filter(pk=zweit.pk).update(last_seen=timezone.now() - timedelta(hours=2))
    admin_web.get(reverse("dashboard") + f"?server={zweit.pk}")
    response = admin_web.post(reverse("send-one", args=[offline_account.pk, "curl"]),
                              HTTP_HX_REQUEST="true")  # fmt: skip
    assert "Der Server zweit ist offline" in response.content.decode()
    assert not TestSend.objects.exists()


def test_one_servers_order_is_copied_to_another(admin_web, zweit):
    local = Server.local()
    mine = ["msmtp", "python3"] + [k for k in KEYS if k not in ("msmtp", "python3")]
    order.save_order(order.OrderProposal(mine, frozenset({"msmtp", "python3"})))
    assert order.current_order(zweit).order[:2] != ["msmtp", "python3"]
    admin_web.get(reverse("order") + f"?server={zweit.pk}")
    response = admin_web.post(reverse("order-copy"), {"source": local.pk})
    assert response.status_code == 302
    assert order.enabled_keys(zweit) == ["msmtp", "python3"]
    assert order.current_order(local).order == mine  # the source is unchanged
    entry = AuditEntry.objects.get(action="order_changed")
    assert entry.target == "Reihenfolge (zweit)" and f"kopiert von {local.name}" in entry.detail
    assert TransportSetting.objects.filter(server=zweit).count() == len(KEYS)


def test_an_account_of_one_server_is_not_used_on_another_until_copied(
    admin_web, offline_account, zweit
):
    local = Server.local()
    only = Account(name="Nur zweit", host="smtp.example.net", port=587, used_on=zweit,
                   username="z@example.net", sender="z@example.net", recipient="a@example.org")
    only.set_password("zweit-geheim")
    only.save()
    assert set(Account.on(local)) == {offline_account}
    assert set(Account.on(zweit)) == {offline_account, only}
    with pytest.raises(services.NotAccepted, match="nur auf dem Server zweit"):
        services.start_tests(only, ["curl"], None, server=local)
    page = admin_web.get(reverse("dashboard") + f"?account={only.pk}").content.decode()
    assert "Nur zweit" not in page  # the shown server (this one) does not use it

    listing = admin_web.get(reverse("accounts")).content.decode()
    assert 'data-used-on="zweit"' in listing and f'data-copy="{only.pk}"' in listing
    response = admin_web.post(reverse("account-copy", args=[only.pk]))
    assert response.status_code == 302
    copy = Account.objects.get(name=f"Nur zweit @ {local.name}")
    assert copy.used_on == local and copy.decrypt_password() == "zweit-geheim"
    assert (copy.host, copy.username, copy.is_default) == (only.host, only.username, False)
    assert set(Account.on(local)) == {offline_account, copy}
    entry = AuditEntry.objects.get(action="account_created", target=copy.name)
    assert entry.username == "chef" and "copied from Nur zweit" in entry.detail
