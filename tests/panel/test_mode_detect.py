"""'Detect the mode' on the account form, and the port/mode warning worded from it.

The view asks the loopback test SMTP server (one port in clear with STARTTLS, one with
implicit TLS); the warning trusts a detection for the account's own host and port over
the 465 rule, and words the rule as a guess when there is none.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import translation

from transports.base import Mode
from xmailadmin.forms import detection_ticket
from xmailadmin.models import Account

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
DETECT = reverse("account-detect-mode")


def detect(web, host, port):
    response = web.post(DETECT, {"host": host, "port": port}, **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def hidden_detection(html: str) -> str:
    match = re.search(r'name="detection" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def account_data(**changes) -> dict:
    data = {
        "name": "Büro", "host": "127.0.0.1", "port": "2465", "mode": "smtps",
        "username": "buero@example.org", "password": "geheim", "sender": "buero@example.org",
        "recipient": "admin@example.org", "ca_file": "", "verify": "on", "is_default": "on",
    }  # fmt: skip
    data.update(changes)
    return data


# --- the view, against the real test server -------------------------------------------


def test_a_starttls_port_is_detected_and_said_in_german(admin_web, smtp):
    html = detect(admin_web, smtp.host, smtp.starttls_port)
    assert "grüßt unverschlüsselt und bietet STARTTLS an" in html
    assert 'data-use-mode="starttls"' in html
    assert "Diesen Modus verwenden: STARTTLS" in html
    assert "<html" not in html  # the form's partial only


def test_an_implicit_tls_port_is_detected_as_smtps(admin_web, smtp):
    html = detect(admin_web, smtp.host, smtp.smtps_port)
    assert 'data-use-mode="smtps"' in html
    assert "erwartet zuerst TLS" in html and "Der Modus ist SMTPS" in html
    assert hidden_detection(html)


def test_the_finding_is_said_in_english_after_the_switch(admin_web, smtp):
    admin_web.post(reverse("set_language"), {"language": "en", "next": "/"})
    html = detect(admin_web, smtp.host, smtp.starttls_port)
    assert "greets in clear and offers STARTTLS: the mode is STARTTLS" in html
    assert "Use this mode: STARTTLS" in html


def test_a_closed_port_is_said_without_a_mode_to_use(admin_web, refused_port):
    html = detect(admin_web, "127.0.0.1", refused_port)
    assert "Keine Verbindung" in html or "keine Verbindung" in html
    assert "data-use-mode" not in html and 'name="detection"' not in html


@pytest.mark.parametrize("host", ["smtp;reboot", "$(id).example.org", "a`b`.example", "x|y"])
def test_a_hostile_host_is_refused_with_a_clear_message_and_no_connection(admin_web, host):
    html = detect(admin_web, host, "25")
    assert 'id="detect-error"' in html
    assert "nicht erlaubt" in html or "kein gültiger Servername" in html
    assert 'id="detect-finding"' not in html


def test_detecting_without_a_port_says_to_enter_it(admin_web):
    assert "Bitte zuerst den Port eingeben." in detect(admin_web, "127.0.0.1", "")
    assert "Bitte zuerst den Server eingeben." in detect(admin_web, "", "25")


def test_support_may_not_detect(support_web, smtp):
    response = support_web.post(DETECT, {"host": smtp.host, "port": smtp.starttls_port}, **HTMX)
    assert response.status_code == 403


def test_anonymous_users_are_sent_to_the_login(client):
    assert client.post(DETECT, {"host": "127.0.0.1", "port": "25"}, **HTMX)["HX-Redirect"] == (
        reverse("login")
    )
    assert client.get(DETECT).status_code in (302, 405)


def test_the_form_offers_the_button_and_sends_only_host_and_port(admin_web, offline_account):
    for url in (reverse("account-new"), reverse("account-edit", args=[offline_account.pk])):
        html = admin_web.get(url).content.decode()
        assert "Modus erkennen" in html
        assert f'hx-post="{DETECT}"' in html and 'hx-params="host,port"' in html
        assert 'hx-indicator="#detect-indicator"' in html


# --- saving a detection with the account ----------------------------------------------


def test_saving_after_a_detection_stores_the_mode_and_drops_the_warning(admin_web, smtp):
    ticket = hidden_detection(detect(admin_web, smtp.host, smtp.smtps_port))
    data = account_data(host=smtp.host, port=str(smtp.smtps_port), detection=ticket)
    response = admin_web.post(reverse("account-new"), data, follow=True)
    account = Account.objects.get()
    assert account.detection == Mode.SMTPS and account.detected_at
    html = response.content.decode()
    assert "üblicherweise" not in html and "erwartet" not in html
    assert "vom Server bestätigt" in admin_web.get(reverse("accounts")).content.decode()
    edit = admin_web.get(reverse("account-edit", args=[account.pk])).content.decode()
    assert "für diesen Server und Port erkannt: SMTPS (implizites TLS)" in edit


def test_a_detection_for_another_port_is_not_saved(admin_web):
    ticket = detection_ticket("127.0.0.1", 2466, Mode.SMTPS)
    admin_web.post(reverse("account-new"), account_data(detection=ticket))
    assert Account.objects.get().detected_mode == ""


def test_a_forged_detection_is_not_saved(admin_web):
    forged = detection_ticket("127.0.0.1", 2465, Mode.SMTPS)[:-3] + "AAA"
    admin_web.post(reverse("account-new"), account_data(detection=forged))
    assert Account.objects.get().detected_mode == ""


def test_a_wrong_mode_is_warned_with_what_the_server_expects(admin_web, smtp):
    ticket = hidden_detection(detect(admin_web, smtp.host, smtp.smtps_port))
    data = account_data(
        host=smtp.host, port=str(smtp.smtps_port), mode="starttls", detection=ticket
    )
    html = admin_web.post(reverse("account-new"), data, follow=True).content.decode()
    assert (
        f"Der Server auf Port {smtp.smtps_port} erwartet SMTPS (implizites TLS), "
        "im Konto steht STARTTLS." in html
    )
    listing = admin_web.get(reverse("accounts")).content.decode()
    assert "Server erwartet SMTPS" in listing


# --- the warning's logic ----------------------------------------------------------------


def account(port: int, mode: str = "", detected: Mode | None = None, **kwargs) -> Account:
    acc = Account(host="mail.example.org", port=port, mode=mode, **kwargs)
    if detected is not None:
        acc.record_detection(detected)
    return acc


@pytest.mark.parametrize(
    ("port", "mode", "detected"),
    [
        (2465, "smtps", Mode.SMTPS),  # implicit TLS on another port, as detected
        (465, "starttls", Mode.STARTTLS),  # STARTTLS on 465 behind a proxy
        (465, "", Mode.SMTPS),
        (587, "", Mode.STARTTLS),
    ],
)
def test_a_mode_the_server_confirmed_is_not_warned(port, mode, detected):
    acc = account(port, mode, detected)
    assert not acc.mode_mismatch and acc.mode_warning == "" and acc.mode_badge == ""


@pytest.mark.parametrize(
    ("port", "mode", "detected", "expects", "says"),
    [
        (2465, "", Mode.SMTPS, "SMTPS (implizites TLS)", "STARTTLS"),  # by port: wrong
        (2465, "starttls", Mode.SMTPS, "SMTPS (implizites TLS)", "STARTTLS"),
        (465, "", Mode.STARTTLS, "STARTTLS", "SMTPS (implizites TLS)"),
    ],
)
def test_a_mode_against_the_detection_is_warned_with_what_was_found(
    port, mode, detected, expects, says
):
    with translation.override("de"):
        warning = account(port, mode, detected).mode_warning
    assert warning == f"Der Server auf Port {port} erwartet {expects}, im Konto steht {says}."


def test_without_a_detection_the_465_rule_is_worded_as_a_guess():
    with translation.override("de"):
        assert account(2465, "smtps").mode_warning == (
            "Port 2465 ist üblicherweise STARTTLS, im Konto steht SMTPS (implizites TLS). "
            "Zur Sicherheit »Modus erkennen« drücken."
        )
        assert account(465, "starttls").mode_badge == "ungewöhnlich für Port 465 (nicht geprüft)"
    with translation.override("en"):
        assert "465 is usually SMTPS (implicit TLS)" in account(465, "starttls").mode_warning
        assert "Detect the mode" in account(465, "starttls").mode_warning
    assert account(2465).mode_warning == ""  # by port, nothing chosen: nothing to doubt


def test_a_detection_for_an_earlier_host_or_port_no_longer_counts():
    acc = account(2465, "smtps", Mode.SMTPS)
    acc.port = 2587
    assert acc.detection is None and acc.mode_mismatch  # back to the guess
    acc.port, acc.host = 2465, "other.example.org"
    assert acc.detection is None
