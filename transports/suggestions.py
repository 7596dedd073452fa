"""What to do about a failed send: one table, from the reason (its code, and where it
matters the server's words) to a suggestion and the action the panel can offer.

The first rule that fits wins, so a narrow rule (530 "issue STARTTLS first") stands
before the broad one of its code (every other AUTH refusal). Each rule has its own test
(tests/transports/test_suggestions.py); the CLI (``send --json``) and the panel read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .texts import Text, gettext_noop


@dataclass(frozen=True)
class Rule:
    codes: frozenset[str]  # the result's reason_code values it answers
    text: str  # message id; may name %(host)s, %(port)s, %(user)s, %(sender)s, %(mode)s
    action: str = ""  # what the panel may offer: switch_mode, edit_login, ca_file, ...
    words: re.Pattern[str] | None = None  # the server's or tool's words it also needs
    needs: str = ""  # a value (such as the issuer) without which the rule does not fit


def _rule(
    codes: str, text: str, action: str = "", words: str | None = None, needs: str = ""
) -> Rule:
    pattern = re.compile(words, re.I) if words else None
    return Rule(frozenset(codes.split()), text, action, pattern, needs)


FIREWALL = gettext_noop(
    "nothing answers at %(host)s:%(port)s: check host name and port (465 for implicit "
    "TLS, 587 for STARTTLS) and that a firewall lets this server connect out to that port"
)

RULES: tuple[Rule, ...] = (
    _rule(
        "tls_mode tls_clear_reply",
        gettext_noop(
            "the port speaks the other TLS mode: switch the mode to %(mode)s and try again"
        ),
        "switch_mode",
    ),
    _rule(
        "auth mail_from rcpt_to unknown",
        gettext_noop(
            "the server wants STARTTLS before the login: switch the mode to %(mode)s and try "
            "again"
        ),
        "switch_mode",
        words=r"\b530\b.*(?:STARTTLS|TLS first)",
    ),
    _rule(
        "auth",
        gettext_noop(
            "check the user name %(user)s and the password; a provider with two-factor login "
            "usually needs an app password here"
        ),
        "edit_login",
    ),
    _rule(
        "sender_refused",
        gettext_noop(
            "the server lets %(user)s send only as its own addresses: use the account's own "
            "address as sender instead of %(sender)s"
        ),
        "use_account_sender",
    ),
    _rule(
        "tls_untrusted tls_verify_certificates",
        gettext_noop(
            "this server does not trust %(issuer)s, the issuer of the server's certificate: "
            "put that issuer's certificate (PEM) into the account's CA file"
        ),
        "ca_file",
        needs="issuer",
    ),
    _rule(
        "tls_untrusted tls_verify_certificates",
        gettext_noop(
            "this server does not trust the issuer of the server's certificate: put the "
            "issuer's certificate (PEM) into the account's CA file"
        ),
        "ca_file",
    ),
    _rule(
        "tls_hostname tls_name tls_verify_hosts tls_verify_cert_hostnames",
        gettext_noop(
            "the certificate is not made out to %(host)s: enter as host one of the names the "
            "certificate names (in the reason)"
        ),
        "edit_host",
    ),
    _rule(
        "ca_file_unusable",
        gettext_noop("choose a CA file that holds the issuer's certificate in PEM form"),
        "ca_file",
    ),
    _rule(
        "tls_version",
        gettext_noop(
            "this command's TLS library is too old for the server: send through another "
            "command of the order, or update the package"
        ),
        "other_command",
    ),
    _rule("connect timeout", FIREWALL),
    _rule(
        "not_installed",
        gettext_noop("install the command's package, or switch it off in the order"),
        "order",
    ),
)


@dataclass(frozen=True)
class Suggestion:
    text: Text
    action: str

    def to_dict(self) -> dict:
        return {"suggestion": str(self.text), "suggestion_text": self.text.to_dict(),
                "action": self.action}  # fmt: skip


def suggest(
    code: str, words: str, *, host: str = "", port: int | str = "", user: str = "",
    sender: str = "", implicit_tls: bool = False, issuer: str = "",
) -> Suggestion | None:  # fmt: skip
    """The suggestion for a failure with reason ``code`` and the tool's and server's
    ``words`` (detail and reason), or None when the table has none. ``issuer``: the
    certificate's issuer, when the caller asked the server (cert_probe.name_issuer)."""
    values = {
        "host": host, "port": str(port), "user": user, "sender": sender, "issuer": issuer,
        # The mode to switch to: the other one.
        "mode": "STARTTLS" if implicit_tls else "SMTPS (implicit TLS)",
    }  # fmt: skip
    for rule in RULES:
        if rule.needs and not values[rule.needs]:
            continue
        if code in rule.codes and (rule.words is None or rule.words.search(words)):
            named = {k: v for k, v in values.items() if f"%({k})s" in rule.text}
            return Suggestion(Text(rule.text, named), rule.action)
    return None
