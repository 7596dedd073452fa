"""The account form refuses bad input with a clear German message and stores nothing."""

from __future__ import annotations

import pytest
from django.utils import translation

from xmailadmin.forms import AccountForm
from xmailadmin.models import Account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def german():
    with translation.override("de"):
        yield


def data(**changes) -> dict:
    values = {
        "name": "Büro",
        "host": "smtp.example.org",
        "port": "587",
        "mode": "",
        "username": "buero@example.org",
        "password": "geheim",
        "sender": "buero@example.org",
        "recipient": "admin@example.org",
        "ca_file": "",
        "verify": "on",
        "is_default": "on",
    }
    values.update(changes)
    return values


def refused(field: str, **changes) -> str:
    """Submit, expect the field refused and nothing stored; return the message."""
    form = AccountForm(data(**changes))
    assert not form.is_valid()
    assert field in form.errors, form.errors
    assert not Account.objects.exists()
    return " ".join(form.errors[field])


def test_it_accepts_a_plain_account():
    form = AccountForm(data())
    assert form.is_valid(), form.errors
    account = form.save()
    assert account.is_default
    assert account.password_encrypted and "geheim" not in account.password_encrypted


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "mail.example.org", "müller.de"])
def test_it_accepts_host_names_and_addresses(host):
    form = AccountForm(data(host=host))
    assert form.is_valid(), form.errors


@pytest.mark.parametrize(
    "host", ["mail example.org", "-bad.example", "a" * 64 + ".example", "http://x", "1.2.3.4:25"]
)
def test_it_refuses_a_host_that_is_not_a_host(host):
    message = refused("host", host=host)
    assert "kein gültiger Servername" in message or "nicht erlaubt" in message


@pytest.mark.parametrize("char", list(";|&$`<>\\\"'(){}*?!~#"))
def test_it_refuses_shell_characters_in_the_host(char):
    message = refused("host", host=f"smtp{char}example.org")
    assert "nicht erlaubt" in message or "kein gültiger Servername" in message


@pytest.mark.parametrize("field", ["name", "username", "sender", "recipient", "ca_file"])
def test_it_refuses_shell_characters_in_every_field(field):
    value = {"sender": "a$(id)@example.org", "recipient": "a;b@example.org"}.get(field, "x;rm -rf")
    message = refused(field, **{field: value})
    assert "nicht erlaubt" in message or "Keine gültige E-Mail-Adresse" in message


@pytest.mark.parametrize("field", ["name", "host", "username", "password", "sender", "recipient"])
@pytest.mark.parametrize("breaker", ["\r", "\n", "\r\n"])
def test_it_refuses_line_breaks_in_every_field(field, breaker):
    value = {"sender": "a@example.org", "recipient": "b@example.org"}.get(field, "abc")
    message = refused(field, **{field: value + breaker + "RCPT TO:<x@evil>"})
    assert message


def test_the_line_break_message_is_clear_german():
    assert refused("username", username="a\r\nb") == "Zeilenumbrüche (CR/LF) sind nicht erlaubt."


def test_the_password_may_hold_shell_characters():
    form = AccountForm(data(password="p;a$s|s`w(o)r'd\""))
    assert form.is_valid(), form.errors


def test_it_refuses_control_characters_in_the_password():
    assert refused("password", password="ab\x07cd") == "Steuerzeichen sind nicht erlaubt."
    assert "Nullzeichen" in refused("password", password="ab\x00cd")


@pytest.mark.parametrize("port", ["0", "65536", "-1", "99999999"])
def test_it_refuses_ports_out_of_range(port):
    assert refused("port", port=port) == "Der Port muss zwischen 1 und 65535 liegen."


def test_it_refuses_a_port_that_is_no_number():
    assert "Zahl" in refused("port", port="25a")


@pytest.mark.parametrize("port", ["1", "465", "65535"])
def test_it_accepts_ports_at_the_edges(port):
    assert AccountForm(data(port=port)).is_valid()


@pytest.mark.parametrize(
    "address", ["no-at-sign", "a@", "@example.org", "a@b@example.org", "a b@example.org", "a@-x.de"]
)
def test_it_refuses_malformed_addresses(address):
    assert "Keine gültige E-Mail-Adresse" in refused("sender", sender=address)


@pytest.mark.parametrize(
    ("field", "length"),
    [("name", 101), ("host", 254), ("username", 255), ("sender", 255), ("password", 257)],
)
def test_it_refuses_values_over_sane_lengths(field, length):
    value = "a" * length
    if field == "sender":
        value = "a" * (length - len("@example.org")) + "@example.org"
    message = refused(field, **{field: value})
    assert "höchstens" in message or "kein gültiger" in message or "Keine gültige" in message


def test_it_wants_a_password_for_a_new_account():
    assert refused("password", password="") == "Bitte ein Passwort eingeben."


def test_an_empty_password_keeps_the_stored_one():
    account = AccountForm(data()).save()
    form = AccountForm(data(password="", name="Neu"), instance=account)
    assert form.is_valid(), form.errors
    form.save()
    account.refresh_from_db()
    assert account.decrypt_password() == "geheim"
    assert "password" not in form.changed_fields()


def test_a_ca_file_must_hold_a_certificate_and_says_the_same_whatever_it_is(tmp_path, pki):
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("no certificate here\n")
    half = tmp_path / "half.pem"
    half.write_text("-----BEGIN CERTIFICATE-----\n")
    # Missing, unreadable or the wrong file: one sentence, so nobody learns what exists.
    for path in (tmp_path / "missing.pem", not_pem, half, "/etc/shadow", pki.ca_key_file):
        assert "kein brauchbares Zertifikat" in refused("ca_file", ca_file=str(path))
    assert "absoluten Pfad" in refused("ca_file", ca_file="relative/ca.pem")
    assert AccountForm(data(ca_file=str(pki.ca_file))).is_valid()


def test_the_password_field_never_renders_its_value():
    account = AccountForm(data()).save()
    html = str(AccountForm(instance=account)["password"])
    assert "geheim" not in html and 'value="' not in html


@pytest.mark.parametrize(
    "sender", ["o'brien@example.org", "a;b@example.org", "kein-at.example.org"]
)
def test_a_bad_sender_is_called_an_invalid_address_not_a_shell_problem(sender):
    message = refused("sender", sender=sender)
    assert "Keine gültige E-Mail-Adresse" in message
    assert "Sonderzeichen" not in message
