"""``mutt`` in batch mode (``-H -``) with its own SMTP; a mail client, so it rewrites."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from .base import Target, config_value
from .command import CommandTransport, Invocation
from .secrecy import PrivateDir
from .texts import Text, gettext_noop


def muttrc_quote(value: str) -> str:
    """Single quotes are literal in a muttrc (no backticks, no $); otherwise double quotes
    with escapes. A line break can be quoted by neither: refused."""
    config_value(value)
    if "'" not in value:
        return f"'{value}'"
    for char in '\\"`$':
        value = value.replace(char, "\\" + char)
    return f'"{value}"'


class Mutt(CommandTransport):
    key = "mutt"
    binary = "mutt"
    # ssl_verify_host=no skips the name check, but an untrusted chain still fails in batch
    # mode: there is nobody to answer mutt's question.
    can_skip_verification = False
    rewrites = Text(
        gettext_noop(
            "mutt rewrites the message: From gets the local user's name, Date is set anew, the "
            "body is re-encoded 8bit, Content-Disposition is added (the vendor's 'faulty "
            "processing')"
        )
    )

    def invocation(self, exe: str, target: Target, message: bytes, tmp: PrivateDir) -> Invocation:
        scheme = "smtps" if target.implicit_tls else "smtp"
        # Encoded, or "user@other:PORT/" in the user name would send the password elsewhere.
        user = urllib.parse.quote(target.user, safe="")
        settings = {
            "smtp_url": f"{scheme}://{user}@{target.url_host}:{target.port}/",
            "smtp_pass": target.password,
            "ssl_force_tls": "yes",
            "ssl_starttls": "yes",
            "certificate_file": str(tmp.path / "certificates"),  # trust nothing remembered
            "from": target.sender,
            "use_envelope_from": "yes",
            "hostname": target.helo,
            "record": "",
            "copy": "no",
            "charset": "utf-8",
            "send_charset": "utf-8",
            "smtp_authenticators": "plain:login",
        }
        if target.ca_file:
            settings["ssl_ca_certificates_file"] = target.ca_file
        if not target.verify:
            settings["ssl_verify_host"] = "no"
        rc = "".join(f"set {name}={muttrc_quote(value)}\n" for name, value in settings.items())
        argv = [exe, "-n", "-F", tmp.write("muttrc", rc), "-d", "2", "-H", "-"]
        return Invocation(argv, stdin=message)

    def extra_transcript(self, tmp: PrivateDir) -> str:
        # mutt prints nothing of the dialogue; its debug file (in HOME) has it.
        debug = Path(tmp.path, ".muttdebug0")
        return debug.read_text("utf-8", "replace") if debug.exists() else ""
