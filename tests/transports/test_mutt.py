"""mutt's own facts: how a value is quoted in the muttrc the transport writes."""

from __future__ import annotations

import pytest
from detecting import detect_stand_in

from transports.base import TargetError
from transports.mutt import muttrc_quote, parse_mutt_version
from transports.tlsinfo import verdict


def test_a_value_without_single_quotes_is_taken_literally():
    # In single quotes mutt expands neither backticks nor $variables.
    assert muttrc_quote("`touch /x` $HOME") == "'`touch /x` $HOME'"


def test_a_value_with_a_single_quote_gets_escaped_double_quotes():
    assert muttrc_quote("it's `x` $y \\ \"") == '"it\'s \\`x\\` \\$y \\\\ \\""'


@pytest.mark.parametrize("value", ["/ca.pem\nset x=`id`", "a\rb", "a\0b", "a\x1bb"])
def test_a_line_break_or_control_character_is_refused(value):
    with pytest.raises(TargetError):
        muttrc_quote(value)


# --- what mutt -v says of its TLS library -------------------------------------------------


def test_neomutt_with_old_gnutls_stand_in(tmp_path):
    row = detect_stand_in(tmp_path, "mutt", "NeoMutt 20170113 (1.7.2)\nGnuTLS: 2.12.23\n  +gnutls")
    assert (row.tls_library, row.tls_library_version, row.tls12, row.tls13) == (
        "GnuTLS",
        "2.12.23",
        "no",
        "no",
    )


def test_neomutt_names_its_library_version():
    text = "NeoMutt 20170113 (1.7.2)\nGnuTLS: 2.12.23\nCompile options:\n  +gnutls -openssl\n"
    info = parse_mutt_version(text)
    assert info == ("20170113", "GnuTLS", "2.12.23")
    assert verdict(info.library, info.library_version) == ("no", "no")


def test_mutt_without_tls():
    assert parse_mutt_version("Mutt 1.4.2\n-USE_SSL_OPENSSL  -USE_SSL_GNUTLS\n").library == "none"
