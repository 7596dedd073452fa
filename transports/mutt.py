"""``mutt`` in batch mode (``-H -``) with its own SMTP; a mail client, so it rewrites."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from .base import SendResult, Step, Target, config_value
from .cert_probe import certificate_problem
from .classify import failed_at
from .command import CommandTransport, Invocation
from .run import RunOutput
from .secrecy import PrivateDir
from .texts import Text, gettext_noop
from .versions import VersionInfo, parse_openssl_banner


def parse_mutt_version(text: str) -> VersionInfo:
    """``mutt -v``: compile options ``+USE_SSL_GNUTLS`` / ``+USE_SSL_OPENSSL``.

    NeoMutt spells them ``+gnutls`` / ``+openssl`` and prints the library version on a
    line of its own (``OpenSSL: OpenSSL 3.0.11 19 Sep 2023`` or ``GnuTLS: 3.7.9``).

    >>> parse_mutt_version("Mutt 2.2.12 (2023-09-09)\\n-USE_SSL_OPENSSL  +USE_SSL_GNUTLS\\n")
    VersionInfo(version='2.2.12', library='GnuTLS', library_version=None)
    >>> parse_mutt_version("Mutt 1.5.21 (2010-09-15)\\n+USE_SSL_OPENSSL  -USE_SSL_GNUTLS\\n")
    VersionInfo(version='1.5.21', library='OpenSSL', library_version=None)
    """
    text = text or ""
    version = re.search(r"^(?:Neo)?Mutt\s+(\S+)", text, re.MULTILINE)
    flags = set(text.split())
    library = None
    if flags & {"+USE_SSL_GNUTLS", "+gnutls"}:
        library = "GnuTLS"
    elif flags & {"+USE_SSL_OPENSSL", "+openssl"}:
        library = "OpenSSL"
    elif {"-USE_SSL_GNUTLS", "-USE_SSL_OPENSSL"} <= flags:
        library = "none"
    lib_version = None
    line = re.search(r"^(OpenSSL|GnuTLS):\s*(.+)$", text, re.MULTILINE)
    if line and line.group(1) == library:
        banner = parse_openssl_banner(line.group(2))
        lib_version = banner[1] if banner else line.group(2).split()[0]
    return VersionInfo(version and version.group(1), library, lib_version)


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
    version_args = (("-v",),)
    parse_version = staticmethod(parse_mutt_version)
    # ssl_verify_host=no skips the name check, but an untrusted chain still fails in batch
    # mode: there is nobody to answer mutt's question.
    can_skip_verification = False
    gnutls_log = True  # it names no TLS version itself
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

    def outcome(self, out: RunOutput, target: Target) -> SendResult:
        result = super().outcome(out, target)
        # Its words for an unknown CA and for another host's certificate alike, and after
        # STARTTLS only "Could not negotiate TLS connection": the server's certificate,
        # asked once more without mutt, says which it was (or that it was none of them).
        unclear = result.reason_code in ("tls_untrusted", "tls") and target.verify
        if unclear and (problem := certificate_problem(target)):
            detail = f"{result.detail} / {problem}"
            result = failed_at(Step.TLS, target, detail, exit_code=out.returncode)
        return result

    def extra_transcript(self, tmp: PrivateDir) -> str:
        # mutt prints nothing of the dialogue; its debug file (in HOME) has it.
        debug = Path(tmp.path, ".muttdebug0")
        return debug.read_text("utf-8", "replace") if debug.exists() else ""
