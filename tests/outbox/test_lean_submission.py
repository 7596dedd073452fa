"""xmail-sendmail avoids json, re and email on every send; what it does instead must
give what those libraries give, on the inputs applications really hand it."""

from __future__ import annotations

import json
import re
from email.utils import getaddresses, parsedate_to_datetime

import pytest

from outbox.spool import Envelope, as_json
from outbox.submit import dot_line, header_addresses, is_address, rfc5322_now

ADDRESS_LISTS = [
    "rcpt@example.net",
    "Empfänger <rcpt@example.net>",
    "a@example.net, b@example.net,c@example.net",
    "=?utf-8?q?Gr=C3=BC=C3=9Fe?= <a@example.net>, Bob <b@example.net>",
    "Jörg Müller <joerg@example.de>,\n\tAnna <anna@example.de>",
    '"Müller, Jörg" <joerg@example.de>, anna@example.de',
    "anna@example.de (Anna Schmidt), bob@example.net",
    "Team: a@example.net, b@example.net;",
    "undisclosed-recipients:;",
    "a@[127.0.0.1]",
    '"odd\\"quote" <q@example.net>',
    "",
    " , a@example.net, ",
]


@pytest.mark.parametrize("value", ADDRESS_LISTS)
def test_header_addresses_are_what_the_email_library_finds(value):
    expected = [addr for _, addr in getaddresses([value]) if addr]

    assert header_addresses([value]) == expected


def test_the_envelope_line_is_the_json_the_delivery_reads():
    envelope = Envelope(
        sender='odd"sender\\@example.org',
        recipients=["jörg@例え.jp", "tab\there@example.net", "emoji\U0001f600@example.net"],
        submitted_by="www-data",
        submitted_at=1764670000.123456,
        kind="message",
    )
    line = as_json(envelope)

    assert json.loads(line) == envelope.as_dict()
    assert '"jörg@例え.jp"'.encode() in line  # UTF-8 as it is, no \\u escapes
    control = Envelope(sender="a\u2028\x01@example.org", recipients=["\U000e0001@x"])
    assert json.loads(as_json(control)) == control.as_dict()


@pytest.mark.parametrize(
    "data",
    [b"a\n.\nb", b".\nb", b"a\n.", b"a\r\n.\r\nb", b"a\n..\n.x\nb", b"no dot", b"a\n.\rb\n.\n"],
)
def test_the_dot_line_is_found_as_sendmail_finds_it(data):
    match = re.search(rb"^\.\r?$", data, re.MULTILINE)

    assert dot_line(data) == (match.start() if match else None)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("a@example.org", True),
        ("jörg@example.de", True),
        ("root", False),
        ("a@b@c", False),
        ("a b@example.org", False),
        ("<a@example.org>", False),
        ("@example.org", False),
        ("a@", False),
        ("a@example.org\n", False),
    ],
)
def test_an_address_is_local_at_domain(text, ok):
    assert is_address(text) is ok


def test_the_date_header_is_rfc_5322_and_english():
    parsed = parsedate_to_datetime(rfc5322_now())

    assert parsed.tzinfo is not None
    assert re.fullmatch(
        r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", rfc5322_now()
    )
