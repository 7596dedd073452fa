"""Every sentence of transports is shown in German, said from the data its row keeps.

transports marks each message id with gettext_noop; makemessages collects them into
locale/de/LC_MESSAGES/django.po. These tests read the message ids from the source, so a
new sentence without its German text fails here, and they run the code that makes the
sentences (classify, the relay code) to see them said in both languages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import translation
from german import has_german

from transports.base import NOT_VERIFIED_BY_TOOL, NOT_VERIFIED_SWITCHED_OFF, Step, Target
from transports.catalogue import BY_KEY, CATALOGUE
from transports.classify import reason_for
from transports.relay import EximRelay, PostfixRelay, RelayAccount
from transports.relay.follow import QueueState as FollowState
from transports.relay.follow import Tracking
from transports.relay.follow import result_of as verdict
from transports.texts import Text
from xmailadmin import services
from xmailadmin.models import Account, State, TestSend
from xmailadmin.tasks import send_test
from xmailadmin.texts import say

REPO = Path(__file__).resolve().parents[2]
PO_FILE = REPO / "xmailadmin/locale/de/LC_MESSAGES/django.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def transports_msgids() -> list[str]:
    """Every string transports marks with gettext_noop(...), as makemessages reads it."""
    found = set()
    for path in (REPO / "transports").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "gettext_noop"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    return sorted(found)


def target() -> Target:
    return Target(
        host="mail.example.org", port=465, user="me@example.org", password="pw",
        sender="a@example.org", recipient="b@example.org",
    )  # fmt: skip


def in_both(text: Text) -> tuple[str, str]:
    with translation.override("de"):
        german = say(text)
    with translation.override("en"):
        english = say(text)
    return german, english


# --- the catalogue is complete ------------------------------------------------------------


def test_the_scan_finds_the_sentences_of_every_part_of_transports():
    msgids = transports_msgids()
    assert len(msgids) > 150
    assert "the server rejected user or password" in msgids  # classify
    assert "bounced by the local %(mta)s%(ids)s: %(said)s" in msgids  # relay/follow
    assert "sendmail via postfix relay" in msgids  # the catalogue
    assert {e.label.msgid for e in CATALOGUE} <= set(msgids)


@pytest.mark.parametrize("msgid", transports_msgids())
def test_every_message_id_of_transports_has_a_german_text(msgid):
    assert has_german(msgid), f"run makemessages and translate: {msgid!r}"


@pytest.mark.parametrize("msgid", [m for m in transports_msgids() if PLACEHOLDER.search(m)])
def test_every_german_text_takes_the_values_of_its_sentence(msgid):
    values = {name: f"<{name}>" for name in PLACEHOLDER.findall(msgid)}
    german, _english = in_both(Text(msgid, values))
    assert all(value in german for value in values.values()), german
    assert "%(" not in german


def test_the_german_catalogue_has_no_empty_or_fuzzy_text():
    entries = PO_FILE.read_text(encoding="utf-8").split("\n\n")[1:]  # after the header
    fuzzy = [e for e in entries if re.search(r"^#, .*\bfuzzy\b", e, re.M)]
    empty = [e for e in entries if re.search(r'^msgstr ""\Z', e.strip(), re.M)]
    assert fuzzy == [] and empty == []


# --- what the pages say ---------------------------------------------------------------------


def test_a_reason_is_said_in_the_readers_language_with_the_tools_words():
    reason = reason_for(Step.AUTH, target(), "535 5.7.8 Authentication credentials invalid")
    send = TestSend(reason_code="auth", reason_text=reason.to_dict(), recipient="a@b.de")
    with translation.override("de"):
        assert send.explanation == (
            "der Server hat Benutzername oder Passwort abgelehnt "
            "(535 5.7.8 Authentication credentials invalid)"
        )
    with translation.override("en"):
        assert send.explanation == str(reason)


def test_a_reason_keeps_the_values_it_was_sent_with():
    reason = reason_for(Step.CONNECT, target())
    send = TestSend(reason_code="connect", reason_text=reason.to_dict(), recipient="a@b.de")
    with translation.override("de"):
        assert "keine Verbindung zu mail.example.org:465" in send.explanation


def test_a_reason_the_panel_wrote_itself_is_shown_as_stored():
    send = TestSend(reason_code="", reason="Das Konto wurde gelöscht.", recipient="a@b.de")
    assert send.explanation == "Das Konto wurde gelöscht."


def test_a_row_older_than_its_reason_data_shows_its_english_reason():
    send = TestSend(
        reason_code="auth", recipient="a@b.de",
        reason="the server rejected user or password (535 5.7.8 Authentication failed)",
    )  # fmt: skip
    with translation.override("de"):
        assert send.explanation == send.reason


def test_an_older_rows_warning_is_translated_when_it_is_a_message_id():
    send = TestSend(warnings=[str(NOT_VERIFIED_SWITCHED_OFF)], recipient="a@b.de")
    with translation.override("de"):
        assert send.warnings_shown == [
            "das Server-Zertifikat wurde nicht geprüft: die Prüfung ist ausgeschaltet"
        ]


def warnings_of_transports() -> list[Text]:
    rewrites = [e.transport.rewrites for e in CATALOGUE if e.transport.rewrites]
    return [*dict.fromkeys(rewrites), NOT_VERIFIED_BY_TOOL, NOT_VERIFIED_SWITCHED_OFF]


@pytest.mark.parametrize("text", warnings_of_transports(), ids=str)
def test_every_warning_of_transports_is_said_in_german(text):
    send = TestSend(warnings=[text.to_dict()], recipient="a@b.de")
    with translation.override("de"):
        (german,) = send.warnings_shown
    assert german != str(text)


def test_the_catalogue_is_shown_in_the_readers_language():
    python = BY_KEY["python"]
    with translation.override("de"):
        assert say(python.label) == "python (mitgeliefertes Skript)"
        assert say(python.status_label) == "empfohlen"
        assert say(python.remark) == "Skript wird mitgeliefert"
    with translation.override("en"):
        assert say(python.label) == "python (shipped script)"


def test_the_say_filter_says_a_stored_text():
    stored = reason_for(Step.CONNECT, target()).to_dict()
    template = Template("{% load panel %}{{ reason|say }}")
    with translation.override("de"):
        html = template.render(Context({"reason": stored}))
    assert html.startswith("keine Verbindung zu mail.example.org:465")


# --- the relay code's sentences -------------------------------------------------------------


def relay_texts() -> list[Text]:
    """What the relay code says, produced by running it on made-up inputs."""
    texts: list[Text] = []
    for mta in ("postfix", "exim"):
        delivered = Tracking(
            message_id="<x@y>", state=FollowState.DELIVERED, tls_verified=False,
            remote="other.example[192.0.2.1]:25", reason="250 2.0.0 Ok",
        )  # fmt: skip
        texts += verdict(delivered, target(), mta, 1.0).warnings
    texts += PostfixRelay("/nonexistent/postfix").status().notes
    texts.append(PostfixRelay("/nonexistent/postfix").ready()[1])
    texts += EximRelay(binary="/nonexistent/exim4").status().notes
    texts.append(EximRelay(binary="/nonexistent/exim4").ready()[1])
    by_address = RelayAccount(host="192.0.2.7", port=587, user="me", password="pw", mode="smtps")
    texts += PostfixRelay().render(by_address).notes
    named = RelayAccount(host="192.0.2.7", port=25, user="me", password="pw", tls_name="mx.example")
    texts += EximRelay(binary="/nonexistent/exim4").render(named).notes
    for bad in ({"user": "a:b"}, {"password": " pw"}, {"ca_file": "ca.pem"}, {"tls_name": "::1"}):
        values = {"host": "mail.example.org", "port": 465, "user": "me", "password": "pw", **bad}
        with pytest.raises(ValueError) as caught:
            RelayAccount(**values)
        texts.append(caught.value.text)
    with pytest.raises(ValueError) as caught:
        EximRelay(binary="/nonexistent/exim4").render(
            RelayAccount(host="2001:db8::1", port=465, user="me", password="pw")
        )
    texts.append(caught.value.text)
    return texts


@pytest.mark.parametrize("text", relay_texts(), ids=str)
def test_every_text_of_the_relay_code_is_said_in_german(text):
    german, english = in_both(text)
    assert german != english and "%(" not in german
    assert english == str(text)


def test_a_relay_warning_is_said_with_its_parts():
    delivered = Tracking(
        message_id="<x@y>", state=FollowState.DELIVERED, tls_verified=True,
        remote="other.example[192.0.2.1]:25", reason="250 2.0.0 Ok",
    )  # fmt: skip
    (warning,) = verdict(delivered, target(), "postfix", 1.0).warnings
    with translation.override("de"):
        assert say(warning) == (
            "das lokale postfix hat an other.example[192.0.2.1]:25 zugestellt, nicht an den "
            "Server des Kontos mail.example.org:465: seine Relay-Konfiguration nennt einen "
            "anderen Server"
        )


def test_a_delivered_relay_send_says_delivered_with_the_relays_words():
    delivered = Tracking(
        message_id="<x@y>", state=FollowState.DELIVERED, tls_verified=True,
        remote="mail.example.org[192.0.2.1]:465", reason="250 2.0.0 Ok",
    )  # fmt: skip
    result = verdict(delivered, target(), "postfix", 1.0)
    send = TestSend(
        reason_code="done", reason_text=result.reason.to_dict(), delivered=True,
        detail="250 2.0.0 Ok", recipient="a@b.de",
    )  # fmt: skip
    with translation.override("de"):
        assert send.explanation == (
            "vom lokalen postfix an mail.example.org[192.0.2.1]:465 zugestellt: 250 2.0.0 Ok"
        )
        assert send.delivery_label == "zugestellt"


@pytest.mark.parametrize("state", [FollowState.BOUNCED, FollowState.DEFERRED])
def test_a_bounce_is_told_from_a_deferral_by_its_message_id(state):
    tracking = Tracking(message_id="<x@y>", state=state, reason="550 5.1.1 no such user")
    result = verdict(tracking, target(), "exim", 1.0)
    send = TestSend(
        reason_code=result.reason_code, reason_text=result.reason.to_dict(),
        reason=str(result.reason), delivered=False, recipient="a@b.de",
    )  # fmt: skip
    assert send.delivery == state.value
    older = TestSend(reason=str(result.reason), delivered=False, recipient="a@b.de")
    assert older.delivery == state.value  # a row without reason data: by its English


# --- a page explains an old failure with the values of its time ----------------------------


@pytest.fixture
def refusing_account(db) -> Account:
    """An account whose server refuses every connection at once (port 1 on loopback)."""
    account = Account(
        name="Alt", host="127.0.0.1", port=1, username="alt@example.org",
        sender="alt@example.org", recipient="admin@example.org", is_default=True,
    )  # fmt: skip
    account.set_password("pw")
    account.save()
    return account


def test_history_and_dashboard_explain_an_old_failure_with_the_host_and_port_it_had(
    admin_web, refusing_account, worker_alive
):
    (send,) = services.start_tests(refusing_account, ["python3"], None)
    send_test.apply(kwargs={"send_id": send.id})
    send.refresh_from_db()
    assert send.state == State.FAILED and send.reason_code == "connect", send.reason
    assert send.reason_text["params"]["reason"]["params"] == {"host": "127.0.0.1", "port": 1}

    refusing_account.host, refusing_account.port = "mail.example.org", 2
    refusing_account.save()

    history = admin_web.get(reverse("history")).content.decode()
    assert "keine Verbindung zu 127.0.0.1:1" in history
    assert "mail.example.org:2" not in history
    row = admin_web.get(
        reverse("row", args=[refusing_account.pk, "python3"]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "keine Verbindung zu 127.0.0.1:1" in row
    assert "mail.example.org:2" not in row
    dashboard = admin_web.get(reverse("dashboard")).content.decode()
    assert "keine Verbindung zu 127.0.0.1:1" in dashboard
