"""The table of fix suggestions: one case per rule, each rule reached by its own
failure (the first rule that fits wins), with the account's values in the sentence."""

from __future__ import annotations

import pytest

from transports.suggestions import RULES, suggest

ACCOUNT = {"host": "mail.example.net", "port": 587, "user": "alice@example.net",
           "sender": "noreply@example.org"}  # fmt: skip

# (reason code, the tool's and server's words, implicit TLS?) -> action, words in the text
CASES = [
    (("tls_mode", "wrong version number", True), "switch_mode", "switch the mode to STARTTLS"),
    (("auth", "530 5.7.0 Must issue a STARTTLS command first", False), "switch_mode",
     "wants STARTTLS before the login"),
    (("auth", "535 5.7.8 Error: authentication failed", False), "edit_login",
     "check the user name alice@example.net"),
    (("sender_refused", "553 5.7.1 Sender address rejected: not owned by user", False),
     "use_account_sender", "instead of noreply@example.org"),
    (("tls_untrusted", "unable to get local issuer certificate", False, "CN=Other CA"),
     "ca_file", "does not trust CN=Other CA, the issuer"),
    (("tls_untrusted", "unable to get local issuer certificate", False), "ca_file",
     "into the account's CA file"),
    (("tls_hostname", "Hostname mismatch", False), "edit_host",
     "not made out to mail.example.net"),
    (("ca_file_unusable", "", False), "ca_file", "in PEM form"),
    (("tls_version", "tlsv1 alert protocol version", False), "other_command",
     "too old for the server"),
    (("connect", "Connection refused", False), "", "mail.example.net:587"),
    (("not_installed", "", False), "order", "switch it off in the order"),
]  # fmt: skip


@pytest.mark.parametrize(("failure", "action", "words"), CASES, ids=[c[0][0] for c in CASES])
def test_each_failure_gets_its_suggestion(failure, action, words):
    code, said, implicit, *issuer = failure

    found = suggest(code, said, implicit_tls=implicit, issuer="".join(issuer), **ACCOUNT)

    assert found is not None and found.action == action
    assert words in str(found.text)


def test_every_rule_is_reached_by_a_case():
    reached = set()
    for (code, said, implicit, *issuer), _action, _words in CASES:
        found = suggest(code, said, implicit_tls=implicit, issuer="".join(issuer), **ACCOUNT)
        reached.add(next(r.text for r in RULES if r.text == found.text.msgid))
    assert reached == {r.text for r in RULES}


def test_a_failure_the_table_does_not_know_gets_none():
    assert suggest("relay_not_ready", "postfix is not running", **ACCOUNT) is None
