"""curl's own facts: the config lines (-K) that carry the password on stdin."""

from __future__ import annotations

import pytest

from transports.base import TargetError
from transports.curl import config_line


def test_quotes_and_backslashes_are_escaped():
    assert config_line("user", 'u:p"a\\ss') == 'user = "u:p\\"a\\\\ss"\n'


@pytest.mark.parametrize("value", ['u:pw"\nupload-file = "/etc/shadow', "u:p\rw"])
def test_a_line_break_cannot_start_an_option_of_its_own(value):
    with pytest.raises(TargetError):
        config_line("user", value)
