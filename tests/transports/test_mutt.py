"""mutt's own facts: how a value is quoted in the muttrc the transport writes."""

from __future__ import annotations

import pytest

from transports.base import TargetError
from transports.mutt import muttrc_quote


def test_a_value_without_single_quotes_is_taken_literally():
    # In single quotes mutt expands neither backticks nor $variables.
    assert muttrc_quote("`touch /x` $HOME") == "'`touch /x` $HOME'"


def test_a_value_with_a_single_quote_gets_escaped_double_quotes():
    assert muttrc_quote("it's `x` $y \\ \"") == '"it\'s \\`x\\` \\$y \\\\ \\""'


@pytest.mark.parametrize("value", ["/ca.pem\nset x=`id`", "a\rb", "a\0b", "a\x1bb"])
def test_a_line_break_or_control_character_is_refused(value):
    with pytest.raises(TargetError):
        muttrc_quote(value)
