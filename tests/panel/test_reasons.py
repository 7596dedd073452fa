"""Every reason and warning transports can give is shown in German."""

from __future__ import annotations

import pytest
from django.utils import translation

from transports.base import NOT_VERIFIED_BY_TOOL, NOT_VERIFIED_SWITCHED_OFF, Step
from transports.classify import TLS_REASONS
from transports.registry import TRANSPORTS
from xmailadmin import reasons
from xmailadmin.models import TestSend

SPECIAL_CODES = {"not_installed", "queued_unverified", "needs_relay", "password_quotes"}


def transports_warnings() -> set[str]:
    texts = {cls.rewrites for cls in TRANSPORTS.values() if cls.rewrites}
    return texts | {NOT_VERIFIED_BY_TOOL, NOT_VERIFIED_SWITCHED_OFF}


def test_every_reason_code_has_a_text():
    codes = {s.value for s in Step} - {"config"} | {c for _, c, _ in TLS_REASONS} | SPECIAL_CODES
    assert codes <= set(reasons.REASONS)


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
