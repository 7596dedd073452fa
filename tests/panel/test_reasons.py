"""Every reason and warning transports can give is shown in German."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import translation

from transports.base import (
    NOT_VERIFIED_BY_TOOL,
    NOT_VERIFIED_SWITCHED_OFF,
    Step,
    Target,
    TargetError,
)
from transports.classify import TLS_REASONS
from transports.registry import TRANSPORTS
from transports.relay import EximRelay, PostfixRelay, RelayAccount
from transports.relay.follow import State, Tracking, verdict
from xmailadmin import reasons
from xmailadmin.models import TestSend

SPECIAL_CODES = {"not_installed", "queued_unverified", "needs_relay", "password_quotes"}
TRANSPORTS_DIR = Path(__file__).resolve().parents[2] / "transports"


def transports_warnings() -> set[str]:
    texts = {cls.rewrites for cls in TRANSPORTS.values() if cls.rewrites}
    return texts | {NOT_VERIFIED_BY_TOOL, NOT_VERIFIED_SWITCHED_OFF}


def test_every_reason_code_has_a_text():
    codes = {s.value for s in Step} - {"config"} | {c for _, c, _ in TLS_REASONS} | SPECIAL_CODES
    assert codes <= set(reasons.REASONS)


def test_every_reason_code_written_in_transports_has_a_text():
    written = set()
    for path in TRANSPORTS_DIR.rglob("*.py"):
        written |= set(re.findall(r'reason_code="(\w+)"', path.read_text()))
    assert "still_queued" in written  # the relay code is searched too
    assert written - {"config"} <= set(reasons.REASONS)


@pytest.mark.parametrize("code", sorted(reasons.REASONS))
def test_every_reason_has_a_german_text(code):
    with translation.override("de"):
        german = str(reasons.REASONS[code])
    with translation.override("en"):
        assert german != str(reasons.REASONS[code])


@pytest.mark.parametrize("text", sorted(transports_warnings()))
def test_every_warning_of_transports_has_a_german_translation(text):
    assert text in reasons.WARNINGS
    with translation.override("de"):
        assert reasons.warning(text) != text


def test_a_reason_is_shown_in_the_readers_language_with_the_tools_words():
    send = TestSend(
        reason_code="auth",
        reason="the server rejected user or password",
        detail="535 5.7.8 Authentication credentials invalid",
        recipient="a@b.de",
    )
    with translation.override("de"):
        assert send.explanation == (
            "Der Server hat Benutzername oder Passwort abgelehnt. "
            "(535 5.7.8 Authentication credentials invalid)"
        )
    with translation.override("en"):
        assert send.explanation.startswith("The server rejected user name or password.")


def test_a_reason_the_panel_wrote_itself_is_shown_as_stored():
    send = TestSend(reason_code="", reason="Das Konto wurde gelöscht.", recipient="a@b.de")
    assert send.explanation == "Das Konto wurde gelöscht."


# --- the relay code's texts with changing parts ---------------------------------------------


def relay_texts() -> list[str]:
    """What the relay code says, produced by running it on made-up inputs."""
    texts = []
    target = Target(
        host="mail.example.org", port=465, user="me@example.org", password="pw",
        sender="a@example.org", recipient="b@example.org",
    )  # fmt: skip
    for mta in ("postfix", "exim"):
        delivered = Tracking(
            message_id="<x@y>", state=State.DELIVERED, tls_verified=False,
            remote="other.example[192.0.2.1]:25", reason="250 2.0.0 Ok",
        )  # fmt: skip
        texts += verdict(delivered, target, mta, 1.0).warnings
    texts += PostfixRelay("/nonexistent/postfix").status().notes
    texts += ["not handed over: " + PostfixRelay("/nonexistent/postfix").ready()[1]
              + ", so nothing would deliver the message"]  # fmt: skip
    texts += EximRelay(binary="/nonexistent/exim4").status().notes
    texts += [EximRelay(binary="/nonexistent/exim4").ready()[1]]
    by_address = RelayAccount(host="192.0.2.7", port=587, user="me", password="pw", mode="smtps")
    texts += PostfixRelay().render(by_address).notes
    named = RelayAccount(host="192.0.2.7", port=25, user="me", password="pw", tls_name="mx.example")
    texts += EximRelay(binary="/nonexistent/exim4").render(named).notes
    for bad in ({"user": "a:b"}, {"password": " pw"}, {"ca_file": "ca.pem"}, {"tls_name": "::1"}):
        values = {"host": "mail.example.org", "port": 465, "user": "me", "password": "pw", **bad}
        with pytest.raises(TargetError) as caught:
            RelayAccount(**values)
        texts.append(str(caught.value))
    with pytest.raises(ValueError) as caught:
        EximRelay(binary="/nonexistent/exim4").render(
            RelayAccount(host="2001:db8::1", port=465, user="me", password="pw")
        )
    texts.append(str(caught.value))
    return texts


@pytest.mark.parametrize("text", relay_texts())
def test_every_text_of_the_relay_code_is_shown_in_german(text):
    with translation.override("de"):
        german = reasons.translate(text)
    assert german != text
    assert "%(" not in german
    with translation.override("en"):
        assert reasons.translate(text) == text


def test_a_relay_warning_is_translated_with_its_parts():
    text = (
        "the local postfix delivered to other.example[192.0.2.1]:25, not to the account's "
        "server mail.example.org:465: its relay configuration names another server"
    )
    with translation.override("de"):
        assert reasons.warning(text) == (
            "das lokale postfix hat an other.example[192.0.2.1]:25 zugestellt, nicht an den "
            "Server des Kontos mail.example.org:465: seine Relay-Konfiguration nennt einen "
            "anderen Server"
        )


def test_a_relay_that_is_not_ready_is_explained_with_the_reason_why():
    send = TestSend(
        reason_code="relay_not_ready",
        reason="not handed over: postfix is not running (postfix start), so nothing would "
        "deliver the message",
        recipient="a@b.de",
    )
    with translation.override("de"):
        assert "(postfix läuft nicht (postfix start))" in send.explanation
    with translation.override("en"):
        assert "(postfix is not running (postfix start))" in send.explanation


def test_a_delivered_relay_send_says_delivered_with_the_relays_words():
    send = TestSend(reason_code="done", delivered=True, detail="250 2.0.0 Ok", recipient="a@b.de")
    with translation.override("de"):
        assert send.explanation == "Vom lokalen Relay zugestellt. (250 2.0.0 Ok)"
        assert send.delivery_label == "zugestellt"


def test_an_unknown_text_is_shown_as_it_is():
    with translation.override("de"):
        assert reasons.translate("something new happened") == "something new happened"
