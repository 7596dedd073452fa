"""Hostile account values through every way in: none reaches a mail command.

A CA-file path with a line break used to go from /admin/ into mutt's muttrc,
where backticks run through /bin/sh as root. Each value below would create the
marker file if any tool ever evaluated it; the tests plant them through the
panel's form, /admin/, ``loaddata``, the ORM, and a row changed behind the
model's back, then send through every mail command and look for the marker.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from transports.base import Mode, Step, Target
from transports.catalogue import KEYS, transport_for
from xmailadmin import services
from xmailadmin.models import Account, AuditEntry, State, TestSend
from xmailadmin.tasks import send_test

pytestmark = pytest.mark.django_db


def hostile(ca_file: str, mark: Path) -> dict[str, list[str]]:
    run = f"`touch {mark}`"
    return {
        "ca_file": [
            f"{ca_file}\nset smtp_url={run}",
            f"{ca_file}\rset x={run}",
            f"/tmp/{run}/ca.pem",
            f"/tmp/$(touch {mark})",
            f"{ca_file}\0",
        ],
        "username": [f"tester{run}", f"tester\nset x={run}", "tester\u200b"],
        "sender": [f"a{run}@example.org", f"a@example.org\nset x={run}"],
        "host": [f"localhost{run}", f"localhost\nset x={run}", "127.1", "2130706433"],
    }


def cases(ca_file: str, mark: Path) -> list[tuple[str, str]]:
    return [(field, v) for field, values in hostile(ca_file, mark).items() for v in values]


@pytest.fixture
def mark(tmp_path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a mail command ran a planted command"


def test_the_panel_form_refuses_each_hostile_value(admin_web, account, mark):
    for field, value in cases(str(account.ca_file), mark):
        form = {
            "name": account.name,
            "host": account.host,
            "port": account.port,
            "mode": "",
            "username": account.username,
            "sender": account.sender,
            "recipient": account.recipient,
            "ca_file": account.ca_file,
            "verify": "on",
            field: value,
        }
        response = admin_web.post(reverse("account-edit", args=[account.pk]), form)
        assert response.status_code == 200, (field, value)  # the form again, with the error
        assert response.context["form"].errors.get(field), (field, value)
    account.refresh_from_db()
    assert "touch" not in json.dumps(
        [account.ca_file, account.username, account.sender, account.host]
    )


def test_admin_cannot_add_change_or_delete_accounts_or_audit_entries(
    client, django_user_model, account
):
    root = django_user_model.objects.create_superuser("root", password="pw-root-123")
    client.force_login(root)
    AuditEntry.record(root, AuditEntry.Action.ORDER_RESET)
    entry = AuditEntry.objects.first()
    attempts = [
        reverse("admin:xmailadmin_account_add"),
        reverse("admin:xmailadmin_account_delete", args=[account.pk]),
        reverse("admin:xmailadmin_auditentry_delete", args=[entry.pk]),
    ]
    for url in attempts:
        assert client.post(url, {"post": "yes", "ca_file": "/x\n`id`"}).status_code == 403, url
    change = reverse("admin:xmailadmin_account_change", args=[account.pk])
    client.post(change, {"ca_file": "/tmp/x\nset x=`id`", "name": account.name})
    account.refresh_from_db()
    assert "\n" not in account.ca_file
    assert Account.objects.filter(pk=account.pk).exists()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_orm_and_loaddata_refuse_each_hostile_value(account, mark, tmp_path):
    for field, value in cases(str(account.ca_file), mark):
        fresh = Account.objects.get(pk=account.pk)
        setattr(fresh, field, value)
        with pytest.raises(ValidationError):
            fresh.save()
        fixture = tmp_path / "accounts.json"
        fields = {
            "name": "Import",
            "host": "localhost",
            "port": 587,
            "username": "u",
            "sender": "a@example.org",
            "recipient": "b@example.org",
            field: value,
        }
        fixture.write_text(json.dumps([{"model": "xmailadmin.account", "fields": fields}]))
        with pytest.raises(ValidationError):
            call_command("loaddata", str(fixture), verbosity=0)
        assert not Account.objects.filter(name="Import").exists()


@pytest.mark.parametrize("key", KEYS)
def test_a_row_changed_behind_the_models_back_runs_nothing(
    account, smtp, mark, key, worker_alive
):
    """QuerySet.update skips every model check; the send must still run no tool."""
    for field, value in cases(str(account.ca_file), mark):
        Account.objects.filter(pk=account.pk).update(**{field: value})
        send = queue_and_run(account, key)
        assert send.state == State.FAILED, (field, value, send.reason)
        assert send.step in ("config", "unsupported"), (field, value, send.step)
        assert not smtp.find("X-Xmailadmin-Test-Id", str(send.test_id))


def test_audit_entries_are_append_only(panel_admin):
    entry = AuditEntry.record(panel_admin, AuditEntry.Action.ORDER_RESET)
    entry.detail = "rewritten"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).detail == ""


def test_an_account_changed_outside_the_panel_is_audited(account):
    before = AuditEntry.objects.count()
    account.port = 2525
    account.save()
    name = account.name
    account.delete()
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "username"))
    assert actions[before:] == [
        (AuditEntry.Action.ACCOUNT_CHANGED, "system"),
        (AuditEntry.Action.ACCOUNT_DELETED, "system"),
    ]
    assert AuditEntry.objects.filter(target=name).exists()
    assert not TestSend.objects.exists()


def queue_and_run(account: Account, key: str) -> TestSend:
    (send,) = services.start_tests(account, [key], None)
    send_test.apply(kwargs={"send_id": send.id})
    send.refresh_from_db()
    return send


def forged(target: Target, **values) -> Target:
    """A Target whose checks were skipped: the tools' own quoting is the last guard."""
    bad = dataclasses.replace(target)
    for name, value in values.items():
        object.__setattr__(bad, name, value)
    return bad


@pytest.mark.parametrize("key", KEYS)
def test_a_forged_target_never_reaches_a_tool_config(smtp_server, mark, key):
    good = Target(
        host="localhost",
        port=smtp_server.starttls_port,
        user=smtp_server.user,
        password=smtp_server.password,
        sender="a@example.org",
        recipient="b@example.org",
        mode=Mode.STARTTLS,
        ca_file=str(smtp_server.ca_file),
        timeout=10,
    )
    run = f"`touch {mark}`"
    for values in (
        {"ca_file": f"{smtp_server.ca_file}\nset smtp_url={run}"},
        {"user": f"tester\nset smtp_url={run}"},
        {"password": f"pw\nset smtp_url={run}"},
    ):
        transport = transport_for(key)
        result = transport.send(forged(good, **values), b"Subject: x\r\n\r\nx\r\n")
        # The marker fixture is the verdict; a CA file is checked before any tool starts
        # (the local relays read the one they were configured with, never the account's).
        if "ca_file" in values and transport.reads_ca_file:
            assert result.step in (Step.CONFIG, Step.UNSUPPORTED), (key, result)


def test_a_burst_of_clicks_sends_no_burst_of_mails(admin_web, offline_account, worker_alive):
    url = reverse("send-all", args=[offline_account.pk])
    for _ in range(20):
        admin_web.post(url)
        # Each round ends before the next click, as when the server answers fast.
        TestSend.objects.update(state=State.FAILED)
    sent = TestSend.objects.filter(account=offline_account).count()
    assert 0 < sent <= 30
    response = admin_web.post(url, follow=True)
    assert "Zu viele Testmails" in response.content.decode()


def test_an_idn_host_is_shown_in_both_forms(admin_web, offline_account):
    offline_account.host = "mail.bücher.example"
    offline_account.save()
    page = admin_web.get(reverse("accounts")).content.decode()
    assert "mail.bücher.example" in page
    assert "mail.xn--bcher-kva.example" in page
