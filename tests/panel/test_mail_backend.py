"""Django's mail API into the outbox: ``send_mail`` returns once the message is durably
dropped, with the envelope Django's SMTP backend would have used; the delivery then
takes it to the server with its UTF-8 subject intact and the Bcc recipient hidden."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.mail import EmailMessage, send_mail
from outbox_helpers import use_order

from outbox import spool
from xmailadmin import delivery
from xmailadmin import settings as panel_settings

pytestmark = pytest.mark.django_db

BACKEND = "xmailadmin.mail_backend.OutboxBackend"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def outbox(tmp_path, settings):
    folder = tmp_path / "outbox"
    spool.prepare(folder)
    settings.XMAILADMIN_OUTBOX = str(folder)
    settings.EMAIL_BACKEND = BACKEND  # pytest-django puts locmem in every test
    return folder


def dropped(outbox) -> list[tuple[spool.Envelope, bytes]]:
    return [spool.read(path) for path in (outbox / "new").iterdir()]


def test_the_panel_sends_its_django_mail_through_the_outbox():
    assert panel_settings.EMAIL_BACKEND == BACKEND
    assert "@" in panel_settings.DEFAULT_FROM_EMAIL
    assert panel_settings.DEFAULT_FROM_EMAIL != "webmaster@localhost"


def test_send_mail_drops_the_message_with_its_envelope(outbox):
    count = send_mail(
        "Grüße", "Hallo aus Django\n", "Anwendung <app@example.org>", ["Empfänger <a@example.net>"]
    )

    assert count == 1
    [(envelope, message)] = dropped(outbox)
    assert envelope.sender == "app@example.org"
    assert envelope.recipients == ["a@example.net"]  # the bare address, as SMTP wants it
    assert envelope.submitted_by == pwd.getpwuid(os.getuid()).pw_name
    head = message.split(b"\n\n", 1)[0]
    assert b"\nDate: " in head and b"\nMessage-ID: <" in head


def test_the_delivery_takes_it_to_the_server_with_bcc_hidden(outbox, account, smtp):
    use_order("python3")
    email = EmailMessage(
        "Grüße",
        "Schöne Grüße aus dem Django-Backend\n",
        "app@example.org",
        to=["a@example.net"],
        cc=["c@example.net"],
        bcc=["hidden@example.net"],
    )
    assert email.send() == 1
    [(envelope, _)] = dropped(outbox)
    assert envelope.recipients == ["a@example.net", "c@example.net", "hidden@example.net"]

    summary = delivery.run(outbox)

    assert summary.delivered == 1
    got = smtp.messages()
    assert sorted(r for m in got for r in m.rcpt_tos) == sorted(envelope.recipients)
    for received in got:
        assert received.message["Subject"] == "Grüße"
        assert "Schöne Grüße aus dem Django-Backend" in received.message.get_content()
        assert received.message["Bcc"] is None and b"hidden@example.net" not in received.raw


def test_an_outbox_that_cannot_be_written_is_an_error_unless_told_to_be_silent(tmp_path, settings):
    settings.EMAIL_BACKEND = BACKEND
    settings.XMAILADMIN_OUTBOX = str(tmp_path / "missing")

    with pytest.raises(OSError):
        send_mail("Verloren", "body", "app@example.org", ["a@example.net"])
    assert (
        send_mail("Verloren", "body", "app@example.org", ["a@example.net"], fail_silently=True) == 0
    )


APPLICATION = """
import django
from django.conf import settings
settings.configure(EMAIL_BACKEND="xmailadmin.mail_backend.OutboxBackend",
                   XMAILADMIN_OUTBOX=sys.argv[1], DEFAULT_FROM_EMAIL="app@example.org")
django.setup()
from django.core.mail import send_mail
print(send_mail("Aus der Anwendung", "Hallo", None, ["a@example.net"]))
"""


def own_environment() -> dict[str, str]:
    """The environment without the panel's settings module: the project has its own."""
    return {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}


def test_another_django_project_uses_it_with_the_panels_code_on_its_path(outbox, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + APPLICATION, str(outbox)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the panel's folder: only PYTHONPATH finds its code
        env={**own_environment(), "PYTHONPATH": str(REPO)},
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    [(envelope, message)] = dropped(outbox)
    assert envelope.sender == "app@example.org" and envelope.recipients == ["a@example.net"]
    assert b"Subject: Aus der Anwendung" in message
