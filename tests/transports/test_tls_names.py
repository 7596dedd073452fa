"""A certificate for another name is reported as a name mismatch, never as "not trusted".

The `wrong_host` listener's certificate is for wrong.example, signed by the CA the
target trusts: the only fault is the name. "Set the CA file" would send the user to fix
what is not broken. By name (localhost) and by address (127.0.0.1, which that
certificate does not list either).
"""

from __future__ import annotations

import pytest
from mailcommands import RECIPIENT, SENDER, SMTP_COMMANDS, UNVERIFIED, make_target
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode, Step
from transports.message import build_test_message


def sample(command, test_id: str = "x") -> bytes:
    return build_test_message(
        sender=SENDER, recipient=RECIPIENT, command=command.key, test_id=test_id
    )


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_certificate_for_another_name_is_reported_as_the_name(command, smtp, host):
    target = make_target(smtp, Mode.SMTPS, host=host, port=smtp.wrong_host_port)
    result = command.transport().send(target, sample(command))

    if command.id in UNVERIFIED:
        assert result.verified is False
        return
    assert not result.ok
    assert result.step is Step.TLS, result.transcript
    assert result.reason_code == "tls_hostname", (str(result.reason), result.transcript)
    assert "does not match the host name " + host in str(result.reason)
    assert smtp.messages() == []


PYTHONS = [c for c in SMTP_COMMANDS if c.id in ("python2.7", "python3")]


@pytest.fixture(params=PYTHONS, ids=lambda c: c.id)
def python(request):
    request.param.require()
    return request.param


@pytest.mark.parametrize("mode", [Mode.STARTTLS, Mode.SMTPS], ids=lambda m: m.value)
def test_the_send_script_verifies_an_address_the_certificate_lists(
    python, mode, smtp, mail_test_id
):
    """The test certificate lists 127.0.0.1 as IP SAN: Python 2.7's match_hostname
    does not know IP entries and said "doesn't match"."""
    target = make_target(smtp, mode, host="127.0.0.1")
    result = python.transport().send(target, sample(python, mail_test_id))

    assert result.ok, result.transcript
    assert result.verified is True and not result.warnings
    assert smtp.wait_for(header_is(TEST_ID_HEADER, mail_test_id)).tls_version
