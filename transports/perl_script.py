"""``perl`` running the shipped ``scripts/send_mail.pl`` (Net::SMTP + IO::Socket::SSL)."""

from __future__ import annotations

from .scripted import ScriptTransport


class PerlScript(ScriptTransport):
    key = "perl"
    binary = "perl"
    script = "send_mail.pl"
