"""The diagnosis page and "Check the server" on the account form: rows made by the views,
the checks run by the task against the real loopback SMTP server (and a DNS server the
test starts), the outcome shown in German, and the password kept out of every trace."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from django.urls import reverse

from xmailadmin.models import Diagnosis, ProbeResult, ProbeRun, State
from xmailadmin.tasks import diagnose

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def run(row: Diagnosis) -> Diagnosis:
    diagnose.apply(kwargs={"diagnosis_id": row.id})
    row.refresh_from_db()
    return row


def spellings(secret: str, user: str) -> list[str]:
    plain = base64.b64encode(f"\0{user}\0{secret}".encode()).decode()
    return [secret, base64.b64encode(secret.encode()).decode(), plain, quote(secret, safe="")]


def assert_no_secret(secret: str, user: str, *texts: str) -> None:
    for text in texts:
        for spelling in spellings(secret, user):
            assert spelling not in text


def form_values(account, **changes) -> dict:
    data = {
        "host": account.host, "port": str(account.port), "mode": account.mode,
        "username": account.username, "password": "", "sender": account.sender,
        "ca_file": account.ca_file, "name": "irrelevant", "recipient": account.recipient,
    }  # fmt: skip
    data.update(changes)
    return data


# --- the account's diagnosis page ---------------------------------------------------------


def test_checking_the_server_of_an_account_shows_what_it_offers_in_german(
    admin_web, account, smtp, worker_alive
):
    response = admin_web.post(reverse("account-diagnose", args=[account.pk, "server"]), **HTMX)
    assert response.status_code == 200 and 'hx-trigger="every' in response.content.decode()
    row = Diagnosis.objects.get()
    assert row.use_login and row.password_encrypted == ""  # the stored one is used there
    row = run(row)
    assert row.state == State.PASSED, row.report["findings"]
    report = row.report
    assert report["tls_versions"] == {"1.0": False, "1.1": False, "1.2": True, "1.3": True}
    assert report["starttls"] is True and report["login"]["ok"] is True
    assert report["certificate"]["trusted_by"] == "ca_file"
    assert report["auth_mechanisms_before_tls"] == []
    assert "PLAIN" in report["auth_mechanisms_after_tls"]

    page = admin_web.get(reverse("account-diagnosis", args=[account.pk])).content.decode()
    assert "Diagnose von »Testserver«" in page
    assert 'data-version="1.3" data-accepted="yes"' in page
    assert 'data-version="1.0" data-accepted="no"' in page
    assert 'data-check="login" data-level="pass"' in page
    assert_no_secret(smtp.password, smtp.user, page, json.dumps(report), row.error)


def test_a_wrong_password_typed_into_the_form_is_tried_and_never_kept(
    admin_web, account, smtp, worker_alive
):
    wrong = "Falsch-Passwort-42"
    data = form_values(account, password=wrong)
    html = admin_web.post(reverse("account-form-check"), data, **HTMX).content.decode()
    row = Diagnosis.objects.get()
    assert row.password_encrypted and wrong not in row.password_encrypted
    assert row.account is None  # a new account's values: nothing saved
    row = run(row)
    assert row.password_encrypted == ""
    assert row.state == State.FAILED
    (login,) = [f for f in row.report["findings"] if f["check"] == "login"]
    assert login["level"] == "fail" and "535" in json.dumps(row.report["login"])
    status = admin_web.get(reverse("diagnosis-status", args=[row.id]), **HTMX)
    assert status.status_code == 286  # final: the polling stops
    assert_no_secret(wrong, account.username, html, status.content.decode(),
                     json.dumps(row.report))  # fmt: skip


def test_the_form_check_without_a_password_skips_the_login(admin_web, account, smtp, worker_alive):
    admin_web.post(reverse("account-form-check"), form_values(account), **HTMX)
    row = run(Diagnosis.objects.get())
    assert not row.use_login and row.report["login"] is None
    assert row.state == State.PASSED, row.report["findings"]


def test_the_form_check_of_an_edited_account_uses_its_stored_password(
    admin_web, account, smtp, worker_alive
):
    data = form_values(account, account_id=str(account.pk))
    admin_web.post(reverse("account-form-check"), data, **HTMX)
    row = run(Diagnosis.objects.get())
    assert row.use_login and row.report["login"]["ok"] is True


@pytest.mark.parametrize(
    ("field", "value", "german"),
    [
        ("host", "mail.example.org;reboot", "ist hier nicht erlaubt"),
        ("port", "70000", "zwischen 1 und 65535"),
        ("port", "", "Bitte zuerst den Port eingeben."),
    ],
)
def test_bad_values_are_refused_in_german_before_any_connection(admin_web, account, field,
                                                                 value, german):  # fmt: skip
    html = admin_web.post(
        reverse("account-form-check"), form_values(account, **{field: value}), **HTMX
    ).content.decode()
    assert german in html and f'data-check-error="{field}"' in html
    assert not Diagnosis.objects.exists()


def test_the_wrong_mode_is_a_finding_with_the_fix(admin_web, account, smtp, worker_alive):
    account.mode = "smtps"
    account.save()
    admin_web.post(reverse("account-diagnose", args=[account.pk, "server"]))
    row = run(Diagnosis.objects.get())
    assert row.state == State.FAILED
    page = admin_web.get(reverse("account-diagnosis", args=[account.pk])).content.decode()
    assert 'data-level="fail"' in page


def test_support_may_check_an_account_but_not_the_form_values(support_web, account, smtp,
                                                               worker_alive):  # fmt: skip
    assert (
        support_web.post(reverse("account-diagnose", args=[account.pk, "server"])).status_code
        == 302
    )
    assert support_web.post(reverse("account-form-check"), form_values(account)).status_code == 403


# --- the TLS matrix -----------------------------------------------------------------------


def probe_rows(**libraries) -> ProbeRun:
    probe = ProbeRun.objects.create(state=State.PASSED)
    for key, (library, version, tls12, tls13) in libraries.items():
        ProbeResult.objects.create(
            run=probe, key=key, found=True, tls_library=library,
            tls_library_version=version, tls12=tls12, tls13=tls13,
        )  # fmt: skip
    return probe


def test_the_matrix_combines_the_probe_and_the_server_check(admin_web, account, smtp,
                                                             worker_alive):  # fmt: skip
    probe_rows(python=("OpenSSL", "1.0.1", "yes", "no"), curl=("OpenSSL", "3.0.19", "yes", "yes"))
    admin_web.post(reverse("account-diagnose", args=[account.pk, "server"]))
    run(Diagnosis.objects.get())
    page = admin_web.get(reverse("account-diagnosis", args=[account.pk])).content.decode()
    assert "nur TLS 1.2: OpenSSL 1.0.1 kennt kein TLS 1.3" in page
    assert "funktioniert mit TLS 1.3" in page
    assert 'id="matrix-mutt" data-level="none"' in page  # not installed: neutral


def test_the_matrix_before_any_server_check_says_what_each_command_can_speak(admin_web, account):
    probe_rows(python=("OpenSSL", "1.0.1", "yes", "no"))
    page = admin_web.get(reverse("account-diagnosis", args=[account.pk])).content.decode()
    assert "kann TLS 1.2; der Server ist noch nicht geprüft" in page
    assert "Noch nicht geprüft." in page


# --- the sender domain (DNS) --------------------------------------------------------------


def test_the_sender_domain_check_asks_the_configured_nameserver_and_speaks_german(
    admin_web, account, worker_alive, settings
):
    from dns_server import DnsTestServer, txt

    zone = {
        ("example.org", "MX"): ["10 mx.example.org."],
        ("mx.example.org", "A"): ["127.0.0.2"],
        ("example.org", "TXT"): [txt("v=spf1 ip4:127.0.0.0/8 -all")],
        ("_dmarc.example.org", "TXT"): [txt("v=DMARC1; p=reject")],
        ("s1._domainkey.example.org", "TXT"): [txt("v=DKIM1; p=")],
    }
    with DnsTestServer(zone) as server:
        settings.XMAILADMIN_DNS_NAMESERVER = server.nameserver
        url = reverse("account-diagnose", args=[account.pk, "dns"])
        response = admin_web.post(url, {"selectors": "s1, s1"}, **HTMX)
        assert response.status_code == 200 and 'hx-trigger="every' in response.content.decode()
        row = run(Diagnosis.objects.get(kind=Diagnosis.Kind.DNS))
        asked = {name for name, _ in server.queries}
    assert row.domain == "example.org" and row.selectors == ["s1"]
    assert "s1._domainkey.example.org" in asked
    assert row.state == State.FAILED  # the revoked DKIM key
    page = admin_web.get(reverse("account-diagnosis", args=[account.pk])).content.decode()
    assert f"der SPF-Eintrag berechtigt den SMTP-Server {account.host}" in page
    assert "für den Selektor »s1« ist widerrufen" in page
    assert 'id="dkim-selectors" name="selectors" value="s1"' in page
    assert_no_secret(account.decrypt_password(), account.username, page, json.dumps(row.report))


def test_a_hostile_selector_is_refused_in_german_and_nothing_is_queued(admin_web, account):
    url = reverse("account-diagnose", args=[account.pk, "dns"])
    response = admin_web.post(url, {"selectors": "s1 $(id);x"}, **HTMX)
    assert "kein gültiger DKIM-Selektor" in response.content.decode()
    assert not Diagnosis.objects.exists()


def test_a_silent_nameserver_fails_the_check_with_the_reason_in_german(
    admin_web, account, worker_alive, settings
):
    from dns_server import SilentDnsServer

    settings.XMAILADMIN_CHECK_TIMEOUT = 1
    with SilentDnsServer() as server:
        settings.XMAILADMIN_DNS_NAMESERVER = server.nameserver
        admin_web.post(reverse("account-diagnose", args=[account.pk, "dns"]), {}, **HTMX)
        row = run(Diagnosis.objects.get(kind=Diagnosis.Kind.DNS))
    assert row.state == State.FAILED
    page = admin_web.get(reverse("account-diagnosis", args=[account.pk])).content.decode()
    assert "keine Antwort vom Nameserver innerhalb von 1 s" in page
